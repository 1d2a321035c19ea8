import { afterEach, describe, expect, it } from 'vitest'
import { createLogger, formatTimestamp, LOG_LEVELS, type LogLevel } from '../src/logging/log.ts'

function capture(level: LogLevel, pid = 4242) {
  const lines: string[] = []
  const log = createLogger({ level, pid, write: (s) => lines.push(s) })
  return { log, lines }
}

const STAMP = String.raw`\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} [+-]\d{4}`

describe('log lines', () => {
  it('look like gunicorn', () => {
    const { log, lines } = capture('debug')
    log.info('Listening at: http://127.0.0.1:8000 (4242)')
    expect(lines).toHaveLength(1)
    expect(lines[0]).toMatch(
      new RegExp(String.raw`^\[${STAMP}\] \[4242\] \[INFO\] Listening at: http://127\.0\.0\.1:8000 \(4242\)\n$`),
    )
  })

  it('name each level in capitals', () => {
    const { log, lines } = capture('debug')
    for (const level of LOG_LEVELS) log[level](`a ${level} message`)
    expect(lines.map((l) => l.replace(/^\[[^\]]+\] /, ''))).toEqual([
      '[4242] [DEBUG] a debug message\n',
      '[4242] [INFO] a info message\n',
      '[4242] [WARNING] a warning message\n',
      '[4242] [ERROR] a error message\n',
      '[4242] [CRITICAL] a critical message\n',
    ])
  })

  it('use the process pid by default', () => {
    const lines: string[] = []
    createLogger({ level: 'info', write: (s) => lines.push(s) }).info('hi')
    expect(lines[0]).toContain(`] [${process.pid}] [INFO] hi`)
  })

  it('show the current time', () => {
    const { log, lines } = capture('info')
    const before = formatTimestamp(new Date())
    log.info('now')
    const after = formatTimestamp(new Date())
    const stamp = lines[0]?.slice(1, 1 + before.length)
    expect([before, after]).toContain(stamp)
  })
})

describe('level filtering', () => {
  it.each(LOG_LEVELS.map((l, i) => [l, LOG_LEVELS.slice(i)] as const))('at %s writes %j', (level, shown) => {
    const { log, lines } = capture(level)
    for (const l of LOG_LEVELS) log[l]('x')
    expect(lines.map((l) => /\[([A-Z]+)\] x\n$/.exec(l)?.[1])).toEqual(shown.map((l) => l.toUpperCase()))
  })

  it('exception is at error level', () => {
    const { log, lines } = capture('critical')
    log.exception('boom', new Error('x'))
    expect(lines).toEqual([])
  })
})

describe('exception', () => {
  it('logs the message, then the stack on the following lines', () => {
    const { log, lines } = capture('info')
    const err = new Error('worker exploded')
    log.exception('Exception in worker process', err)
    expect(lines).toHaveLength(1)
    const [first, ...rest] = (lines[0] ?? '').split('\n')
    expect(first).toMatch(new RegExp(String.raw`^\[${STAMP}\] \[4242\] \[ERROR\] Exception in worker process$`))
    expect(rest.join('\n')).toBe(`${err.stack}\n`)
    expect(rest[0]).toBe('Error: worker exploded')
  })

  it('logs String(err) for a thrown non-error', () => {
    const { log, lines } = capture('info')
    log.exception('Bad thing', 42)
    expect(lines[0]).toMatch(/\[ERROR\] Bad thing\n42\n$/)
  })
})

describe('formatTimestamp', () => {
  const savedTz = process.env.TZ
  afterEach(() => {
    if (savedTz === undefined) delete process.env.TZ
    else process.env.TZ = savedTz
  })

  const instant = new Date(Date.UTC(2026, 10, 27, 2, 4, 11))

  it.each([
    ['UTC', '2026-11-27 02:04:11 +0000'],
    ['Asia/Kolkata', '2026-11-27 07:34:11 +0530'],
    ['America/New_York', '2026-11-26 21:04:11 -0500'],
  ])('uses local time and the numeric offset in %s', (tz, expected) => {
    process.env.TZ = tz
    expect(formatTimestamp(instant)).toBe(expected)
  })
})
