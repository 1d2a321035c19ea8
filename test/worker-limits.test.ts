// Worker limits against a real corral: --worker-connections (a full worker
// leaves new connections in the kernel's queue: they wait, are never reset,
// and go to whichever worker has room), --keep-alive, and --max-requests /
// --max-memory retiring workers under load with no failed request.
import { spawnSync } from 'node:child_process'
import { afterEach, describe, expect, it } from 'vitest'
import { BIN, ROOT, fixture, freePort, killAll, startCorral, waitFor } from './helpers/corral.ts'
import { KeepAliveClient as Client } from './helpers/keep-alive-client.ts'
import { startLoad } from './helpers/load.ts'
import { acceptQueueLength } from './helpers/sockets.ts'

afterEach(killAll)

async function start(args: string[], signal: AbortSignal, workers = 1) {
  const port = await freePort()
  const corral = startCorral(['-w', String(workers), '-b', `127.0.0.1:${port}`, ...args, fixture('app-pid.ts')], {
    signal,
  })
  await corral.untilReady()
  return { corral, port, url: `http://127.0.0.1:${port}` }
}

/**
 * Waiting for room, proved by the kernel rather than by a pause: the
 * connection sits in the listener's accept queue, accepted by no worker.
 */
const queuedInKernel = (port: number, n: number) =>
  waitFor(() => acceptQueueLength(port) === n, { what: `${n} connection(s) in the accept queue` })

describe('--worker-connections', () => {
  it('-w 1, limit 2: with two idle keep-alive connections, a third waits in the kernel (not reset) and is answered once one closes', async ({
    signal,
  }) => {
    const { corral, port } = await start(['--worker-connections', '2', '--keep-alive', '30'], signal)
    const [worker] = corral.workers()
    const a = new Client(port)
    const b = new Client(port)
    expect(await a.ask()).toBe(`200 ${worker}`)
    expect(await b.ask()).toBe(`200 ${worker}`)

    // The kernel completes the handshake (the socket is in LISTEN state); nobody accepts it.
    const c = new Client(port)
    await c.connected()
    const answer = c.ask('/third')
    await queuedInKernel(port, 1)
    expect(c.state).toBe('open')

    a.close()
    expect(await answer).toBe(`200 ${worker}`)
    // At the limit again (b and c): a fourth waits for room as well, and b is still served meanwhile.
    const d = new Client(port)
    const fourth = d.ask('/fourth')
    await queuedInKernel(port, 1)
    expect(await b.ask()).toBe(`200 ${worker}`)
    c.close()
    expect(await fourth).toBe(`200 ${worker}`)
    for (const client of [b, c, d]) expect(client.state).toBe('open')
    b.close()
    d.close()
  })

  it('-w 2, limit 1: a full worker leaves the next connection to the worker with room', async ({ signal }) => {
    const { corral, port } = await start(['--worker-connections', '1', '--keep-alive', '30'], signal, 2)
    const a = new Client(port)
    const first = (await a.ask()).split(' ')[1]
    const b = new Client(port)
    const second = (await b.ask()).split(' ')[1]
    // Whichever worker took a is full: b can only have gone to the other one.
    expect(second).not.toBe(first)
    expect(new Set([first, second])).toEqual(new Set(corral.workers().map(String)))

    const c = new Client(port)
    const answer = c.ask()
    await queuedInKernel(port, 1)
    b.close()
    expect(await answer).toBe(`200 ${second}`)
    expect(c.state).toBe('open')
    a.close()
    c.close()
  })

  it('keeps serving under load with a small limit, and a graceful stop still finishes', async ({ signal }) => {
    const { corral, url } = await start(['--worker-connections', '3'], signal, 2)
    const load = startLoad(url, { connections: 8 })
    await load.more(300)
    const result = await load.stop()
    expect(result.errors.slice(0, 5)).toEqual([])
    expect(result.failed).toBe(0)
    expect(result.ok).toBeGreaterThan(200)
    expect(result.bodies.size).toBe(2)
    corral.signal('SIGTERM')
    expect((await corral.exited).code).toBe(0)
  })
})

describe('--keep-alive', () => {
  it('an idle connection is closed after the timeout, which the response announces', async ({ signal }) => {
    const { port } = await start(['--keep-alive', '1'], signal)
    const c = new Client(port)
    let head = ''
    c.socket.on('data', (chunk: string) => (head ||= chunk))
    await c.ask()
    expect(head).toMatch(/\r\nKeep-Alive: timeout=1\r\n/i)
    const t0 = Date.now()
    await new Promise<void>((resolve) => c.socket.once('close', () => resolve()))
    // node:http keeps the socket a little past the announced timeout, so the client is always first to know.
    expect(Date.now() - t0).toBeGreaterThanOrEqual(900)
    expect(c.state).toBe('closed')
  })

  it('0 turns keep-alive off: Connection: close, then the server closes', async ({ signal }) => {
    const { port } = await start(['--keep-alive', '0'], signal)
    const c = new Client(port)
    let head = ''
    c.socket.on('data', (chunk: string) => (head ||= chunk))
    await c.ask()
    expect(head).toMatch(/\r\nConnection: close\r\n/i)
    await waitFor(() => c.state !== 'open', { timeoutMs: 2000, what: 'the server to close' })
    expect(c.state).toBe('closed')
  })
})

describe('--max-requests and --max-memory', () => {
  for (const keepAlive of [true, false]) {
    it(`workers retire after --max-requests (+ jitter) and are replaced, with 0 failed requests (${keepAlive ? 'keep-alive' : 'a connection per request'})`, async ({
      signal,
    }) => {
      const { corral, url } = await start(['--max-requests', '60', '--max-requests-jitter', '20'], signal, 2)
      const load = startLoad(url, { connections: 4, keepAlive })
      await waitFor(() => (corral.log().match(/is retiring \(max requests: \d+\)/g)?.length ?? 0) >= 6, {
        timeoutMs: 15_000,
        what: 'six retirements',
      })
      const result = await load.stop()
      expect(result.errors.slice(0, 5)).toEqual([])
      expect(result.failed).toBe(0)
      // Each worker served its limit, plus at most one request per client connection
      // already on its way when it stopped accepting (the last two may still be serving).
      const counts = [...result.bodies.values()]
      expect(result.bodies.size).toBeGreaterThanOrEqual(6)
      for (const n of counts.slice(0, -2)) {
        expect(n).toBeGreaterThanOrEqual(60)
        expect(n).toBeLessThanOrEqual(80 + 4)
      }
      const limits = [...corral.log().matchAll(/max requests: (\d+)\)/g)].map((m) => Number(m[1]))
      for (const limit of limits) {
        expect(limit).toBeGreaterThanOrEqual(60)
        expect(limit).toBeLessThanOrEqual(80)
      }
      // Retiring is not crashing: no back-off, no error lines.
      expect(corral.log()).not.toMatch(/died .* in a row|exited with code|was sent SIG/)
      await waitFor(() => corral.workers().length === 2, { what: 'two workers' })
    })
  }

  it('a worker whose RSS passes --max-memory retires the same way (every second here), with 0 failed requests', async ({
    signal,
  }) => {
    const { corral, url } = await start(['--max-memory', '1'], signal, 2)
    const load = startLoad(url, { connections: 4, keepAlive: true })
    await waitFor(() => (corral.log().match(/is retiring \(max memory: RSS \d+ MB > 1 MB\)/g)?.length ?? 0) >= 4, {
      timeoutMs: 15_000,
      what: 'four retirements',
    })
    const result = await load.stop()
    expect(result.errors.slice(0, 5)).toEqual([])
    expect(result.failed).toBe(0)
    expect(result.ok).toBeGreaterThan(100)
    expect(corral.log()).not.toMatch(/died .* in a row|exited with code|was sent SIG/)
  })
})

describe('bad limit settings', () => {
  it('each is one line naming its setting, exit 2', () => {
    const r = spawnSync(
      process.execPath,
      [
        BIN,
        '--worker-connections',
        '-1',
        '--max-requests',
        'lots',
        '--max-requests-jitter',
        '-5',
        '--max-memory',
        '1.5',
        '--keep-alive',
        '-2',
        fixture('app-pid.ts'),
      ],
      { cwd: ROOT, encoding: 'utf8', timeout: 15_000 },
    )
    expect(r.status).toBe(2)
    for (const flag of [
      '--worker-connections',
      '--max-requests',
      '--max-requests-jitter',
      '--max-memory',
      '--keep-alive',
    ]) {
      expect(r.stderr).toMatch(new RegExp(`^corral: error: ${flag}: expected `, 'm'))
    }
    expect(r.stderr).not.toMatch(/^\s+at /m)
  })
})
