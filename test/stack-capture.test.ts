import { type ChildProcess, spawn } from 'node:child_process'
import fs from 'node:fs'
import { PassThrough } from 'node:stream'
import { afterEach, describe, expect, it } from 'vitest'
import { captureStuckStack, createStderrForwarder } from '../src/master/stack-capture.ts'

const STUCK_APP = new URL('./fixtures/stuck-app.ts', import.meta.url)
const children = new Set<ChildProcess>()

afterEach(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL')
  children.clear()
})

function spawnStuck(...args: string[]): {
  child: ChildProcess
  lines: string[]
  forwarder: ReturnType<typeof createStderrForwarder>
} {
  const child = spawn(process.execPath, ['--inspect-port=127.0.0.1:0', STUCK_APP.pathname, ...args], {
    stdio: ['ignore', 'inherit', 'pipe'],
  })
  children.add(child)
  const lines: string[] = []
  const forwarder = createStderrForwarder(child, (line) => lines.push(line))
  return { child, lines, forwarder }
}

async function until(cond: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out waiting')
    await new Promise((r) => setTimeout(r, 20))
  }
}

function killAndReap(child: ChildProcess): Promise<string | null> {
  return new Promise((resolve) => {
    child.once('exit', (_code, signal) => resolve(signal))
    child.kill('SIGKILL')
  })
}

describe('captureStuckStack', () => {
  it('names the function a spinning worker is stuck in, then the worker is SIGKILLed', async () => {
    const { child, lines, forwarder } = spawnStuck()
    await until(() => lines.includes('spinning'))

    const frames = await captureStuckStack(child.pid ?? -1, forwarder, 5000)

    const spinLine =
      fs
        .readFileSync(STUCK_APP, 'utf8')
        .split('\n')
        .findIndex((l) => l.includes('for (;;) {}')) + 1
    expect(frames?.[0]).toBe(`spinForever (${STUCK_APP.href}:${spinLine}:3)`)
    expect(frames?.[1]).toMatch(/^\(anonymous\) \(file:\/\/.*stuck-app\.ts:\d+:\d+\)$/)
    expect(forwarder.inspectorUrl).toMatch(/^ws:\/\/127\.0\.0\.1:\d+\//)
    // The app's own line got through; the inspector's chatter did not.
    expect(lines.filter((l) => /Debugger|For help/.test(l))).toEqual([])

    expect(await killAndReap(child)).toBe('SIGKILL')
    expect(() => process.kill(child.pid ?? -1, 0)).toThrow()
  })

  it('gives up within the timeout when the worker took SIGUSR1 for itself', async () => {
    const { child, lines, forwarder } = spawnStuck('--own-usr1')
    await until(() => lines.includes('spinning'))
    // Resolving at all is the point: without its own timeout it would wait for an inspector that never comes.
    const frames = await captureStuckStack(child.pid ?? -1, forwarder, 800)
    expect(frames).toBeUndefined()
    expect(forwarder.inspectorUrl).toBeUndefined() // the inspector never started
    expect(await killAndReap(child)).toBe('SIGKILL')
  })

  it('returns undefined for a process that is gone', async () => {
    const { child, forwarder } = spawnStuck()
    await killAndReap(child)
    expect(await captureStuckStack(child.pid ?? -1, forwarder, 500)).toBeUndefined()
  })
})

describe('createStderrForwarder', () => {
  it('forwards lines whole, swallows the inspector announcements, remembers the URL', async () => {
    const stderr = new PassThrough()
    const lines: string[] = []
    const fwd = createStderrForwarder({ stderr } as unknown as ChildProcess, (l) => lines.push(l))
    const pending = fwd.waitForInspectorUrl(5000)
    stderr.write('app: hel')
    stderr.write('lo\r\npartial ')
    stderr.write('Debugger listening on ws://127.0.0.1:9229/abc-def\n')
    stderr.write('For help, see: https://nodejs.org/learn/getting-started/debugging\n')
    stderr.write('Debugger attached.\nDebugger ending on ws://127.0.0.1:9229/abc-def\n')
    stderr.write('Starting inspector on 127.0.0.1:0 failed: address already in use\n')
    stderr.end('no newline at the end')
    expect(await pending).toBe('ws://127.0.0.1:9229/abc-def')
    await new Promise((r) => stderr.once('close', r))
    expect(lines).toEqual([
      'app: hello',
      'partial ',
      'Starting inspector on 127.0.0.1:0 failed: address already in use',
      'no newline at the end',
    ])
    expect(await fwd.waitForInspectorUrl(0)).toBe('ws://127.0.0.1:9229/abc-def')
  })

  it('resolves undefined on timeout and when stderr closes without a URL', async () => {
    const stderr = new PassThrough()
    const fwd = createStderrForwarder({ stderr } as unknown as ChildProcess, () => {})
    expect(await fwd.waitForInspectorUrl(50)).toBeUndefined()
    const pending = fwd.waitForInspectorUrl(10_000)
    stderr.end()
    expect(await pending).toBeUndefined()
  })

  it('never connects to a non-loopback URL read from stderr', async () => {
    const { child } = spawnStuck()
    const fake = { inspectorUrl: 'ws://192.0.2.1:9229/x', waitForInspectorUrl: async () => 'ws://192.0.2.1:9229/x' }
    // Given far longer than the test may run: an attempt to connect would hang the test, a refusal returns at once.
    expect(await captureStuckStack(child.pid ?? -1, fake, 600_000)).toBeUndefined()
  })
})
