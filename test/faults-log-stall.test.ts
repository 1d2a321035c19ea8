// A log disk that stalls (issue 14, faults): the access log is a FIFO that
// has a reader which reads nothing, so the worker's write blocks once the
// pipe is full, as on a hung mount. The worker keeps serving, keeps at most
// MAX_PENDING_BYTES of lines waiting, drops and counts the rest, and says how
// many once the writes go through again.
import { spawn, execFileSync } from 'node:child_process'
import { closeSync, constants, mkdtempSync, openSync } from 'node:fs'
import { Agent, request } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, expect, it } from 'vitest'
import { MAX_PENDING_BYTES } from '../src/logging/log-file.ts'
import { fixture, freePort, killAll, startCorral } from './helpers/corral.ts'

afterEach(killAll)

/** A User-Agent this long makes every access-log line about 4 KB, so a few hundred requests outgrow the cap. */
const AGENT = 'x'.repeat(4000)
const REQUESTS = 800

function send(url: string, agent: Agent): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(url, { agent, headers: { 'user-agent': AGENT } }, (res) => {
      res.resume()
      res.on('end', () => resolve(res.statusCode ?? 0))
    })
    req.on('error', reject)
    req.end()
  })
}

it('a stalled access log: every request served, lines past the cap dropped, counted and reported once writes resume', async ({
  signal,
}) => {
  expect(REQUESTS * AGENT.length).toBeGreaterThan(2 * MAX_PENDING_BYTES)
  const fifo = join(mkdtempSync(join(tmpdir(), 'corral-stall-')), 'access.log')
  execFileSync('mkfifo', [fifo])
  // A reader that never reads: opening for writing does not block, writing does once the pipe is full.
  const stalled = openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK)
  try {
    const port = await freePort()
    const corral = startCorral(
      ['-w', '1', '-b', `127.0.0.1:${port}`, '--access-logfile', fifo, fixture('app-pid.ts')],
      {
        signal,
      },
    )
    await corral.untilReady()

    const agent = new Agent({ keepAlive: true, maxSockets: 8 })
    const statuses = await Promise.all(Array.from({ length: REQUESTS }, () => send(`http://127.0.0.1:${port}/`, agent)))
    agent.destroy()
    expect(statuses.filter((s) => s === 200)).toHaveLength(REQUESTS)

    // The disk comes back: a reader drains the FIFO, the write in flight completes and the worker reports.
    const reader = spawn('cat', [fifo], { stdio: ['ignore', 'pipe', 'ignore'] })
    let written = 0
    reader.stdout.on('data', (chunk: Buffer) => {
      for (const byte of chunk) if (byte === 10) written++
    })
    const drained = new Promise((resolve) => reader.on('exit', resolve))
    try {
      const [, dropped] = await corral.waitForLog(/--access-logfile: (\d+) line\(s\) dropped/)
      corral.signal('SIGTERM')
      expect((await corral.exited).code).toBe(0)
      // The workers have closed their ends: cat sees the end of the FIFO.
      await drained
      expect(Number(dropped)).toBeGreaterThan(0)
      // Every request is a line written or a line counted as dropped: nothing lost silently, nothing twice.
      expect(written + Number(dropped)).toBe(REQUESTS)
    } finally {
      if (reader.exitCode === null) reader.kill('SIGKILL')
    }
  } finally {
    closeSync(stalled)
  }
}, 60_000)
