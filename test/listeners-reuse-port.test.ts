// --reuse-port end to end: every worker listens on a socket of its own
// (SO_REUSEPORT) and the kernel spreads new connections over them; the
// master only reserves the address and listens on nothing. The trade-off is
// shown, not just written down: connections queued on a worker's socket die
// with the worker, where a shared socket keeps them for the next one.
import { mkdtempSync, rmSync } from 'node:fs'
import { connect, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { fixture, freePort, isAlive, killAll, startCorral, waitFor, type Corral } from './helpers/corral.ts'
import { getFrom, hasSs, listeningOn } from './helpers/sockets.ts'

const INFO = fixture('app-listener-info.ts')
const PID = fixture('app-pid.ts')
const env = { ...process.env }
delete env['WEB_CONCURRENCY']
delete env['CORRAL_CMD_ARGS']

const tmp = mkdtempSync(join(tmpdir(), 'corral-reuseport-'))
afterEach(killAll)
afterAll(() => rmSync(tmp, { recursive: true, force: true }))

const pidOf = (body: string) => (JSON.parse(body) as { pid: number }).pid
const sorted = (xs: number[]) => [...xs].sort((a, b) => a - b)

async function hup(c: Corral): Promise<void> {
  await c.hup()
}

describe('--reuse-port', () => {
  it('gives each worker its own listening socket, each serving; the master listens on none; a unix socket stays shared', async ({
    signal,
    skip,
  }) => {
    if (!hasSs()) skip('ss (iproute2) is not installed: .ci/run installs it')
    const port = await freePort()
    const sock = join(tmp, 'shared.sock')
    const c = startCorral(
      ['-w', '3', '--reuse-port', '--backlog', '99', '-b', `127.0.0.1:${port}`, '-b', `unix:${sock}`, INFO],
      { env, signal },
    )
    await c.untilReady()
    expect(c.log()).toContain(`Listening at: http://127.0.0.1:${port} (${c.pid}) (a socket per worker: --reuse-port)`)
    const workers = c.workers()
    expect(workers).toHaveLength(3)
    const sockets = listeningOn(port)
    expect(sockets).toHaveLength(3)
    expect(sorted(sockets.flatMap((s) => s.pids))).toEqual(workers) // one each, none held by the master
    for (const s of sockets) expect(s.backlog).toBe(99)

    // New connections, spread by the kernel over the three sockets.
    const seen = new Set<number>()
    for (let round = 0; round < 5 && seen.size < 3; round++) {
      const bodies = await Promise.all(Array.from({ length: 30 }, () => getFrom({ host: '127.0.0.1', port })))
      for (const b of bodies) seen.add(pidOf(b.body))
    }
    expect(sorted([...seen])).toEqual(workers)
    expect(workers).toContain(pidOf((await getFrom({ socketPath: sock })).body))

    // A new generation binds sockets of its own; the old ones close with their workers.
    await hup(c)
    await waitFor(() => workers.every((p) => !isAlive(p)), { what: 'the old workers to exit' })
    const next = c.workers()
    expect(next).toHaveLength(3)
    expect(sorted(listeningOn(port).flatMap((s) => s.pids))).toEqual(next)
    expect(next).toContain(pidOf((await getFrom({ host: '127.0.0.1', port })).body))

    c.signal('SIGTERM')
    expect((await c.exited).code).toBe(0)
  })

  it('the trade-off: requests queued on a worker that dies are lost with its socket; with the shared socket the next worker serves them', async ({
    signal,
  }) => {
    const run = async (reusePort: boolean) => {
      const port = await freePort()
      const c = startCorral(['-w', '1', ...(reusePort ? ['--reuse-port'] : []), '-b', `127.0.0.1:${port}`, PID], {
        env,
        signal,
      })
      await c.untilReady()
      const [worker] = c.workers()
      // The worker gets stuck; the next requests wait in the kernel, accepted by nobody.
      const stuck = connect(port, '127.0.0.1')
      stuck.on('error', () => {})
      stuck.write('GET /spin HTTP/1.1\r\nHost: x\r\n\r\n')
      await c.waitForLog(/spinning: worker \d+ is stuck on purpose/)
      const queued = Array.from({ length: 3 }, () => rawGet(port))
      await Promise.all(queued.map((q) => q.connected))
      process.kill(worker!, 'SIGKILL')
      const outcomes = await Promise.all(queued.map((q) => q.outcome))
      stuck.destroy()
      return outcomes
    }
    const [shared, perWorker] = await Promise.all([run(false), run(true)])
    expect(shared).toEqual(['200', '200', '200'])
    expect(perWorker).toEqual(['reset', 'reset', 'reset'])
  })
})

/** A request sent on a new connection; outcome: the status code, or 'reset'. */
function rawGet(port: number): { connected: Promise<void>; outcome: Promise<string> } {
  const s: Socket = connect(port, '127.0.0.1')
  let data = ''
  const connected = new Promise<void>((resolve, reject) => s.once('connect', resolve).once('error', reject))
  const outcome = new Promise<string>((resolve) => {
    s.on('data', (d: Buffer) => (data += d.toString()))
    s.on('error', () => resolve('reset'))
    s.on('close', () => resolve(/^HTTP\/1\.1 (\d+)/.exec(data)?.[1] ?? 'reset'))
    s.setTimeout(10_000, () => s.destroy())
  })
  s.write('GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
  return { connected, outcome }
}
