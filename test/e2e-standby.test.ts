// Standby workers end to end (spec/standby.md): a spare that has loaded the
// app takes a serving worker's place, by pid, when that worker is SIGKILLed,
// retires at --max-requests, or is aborted by --timeout, while a steady
// stream of requests goes on; none of those requests fails.
import { afterEach, describe, expect, it, onTestFailed } from 'vitest'
import type { WorkerRow } from '../src/protocol/control.ts'
import { untilMaster } from './helpers/control.ts'
import { fixture, freePort, isAlive, killAll, startCorral, waitFor } from './helpers/corral.ts'
import { get, startLoad } from './helpers/load.ts'
import { scrape } from './helpers/metrics.ts'
import { acceptQueueLength, hasSs, serverSideOwners } from './helpers/sockets.ts'

afterEach(killAll)

async function start(extra: string[], signal: AbortSignal) {
  const port = await freePort()
  const corral = startCorral(
    ['-w', '1', '--standby', '1', '-b', `127.0.0.1:${port}`, ...extra, fixture('app-pid.ts')],
    {
      signal,
    },
  )
  onTestFailed(() => console.log(corral.log()))
  const socket = corral.controlSocket!
  /** The workers as `ctl show workers` lists them, once `probe` accepts them. */
  const until = <T>(probe: (rows: readonly WorkerRow[]) => T | undefined | false) =>
    untilMaster(socket, ['show', 'workers'], 'workers', ({ workers }) => probe(workers), signal)
  const pidsIn = (rows: readonly WorkerRow[], state: WorkerRow['state']) =>
    rows.filter((w) => w.state === state).map((w) => w.pid!)
  // One serving worker, and its spare loaded and waiting.
  const [serving, spare] = await until((rows) => {
    const [s, ...more] = pidsIn(rows, 'running')
    const [w] = pidsIn(rows, 'standby')
    return s !== undefined && more.length === 0 && w !== undefined && [s, w]
  })
  return { corral, port, url: `http://127.0.0.1:${port}`, until, pidsIn, serving: serving!, spare: spare! }
}

/**
 * A steady stream with room between requests: `clients` loops, each sending
 * one request at a time and pausing `gapMs` after each answer, so that the
 * serving worker is idle now and then and can be killed holding nothing.
 */
function pacedStream(url: string, { clients = 2, gapMs = 5 } = {}) {
  const result = { ok: 0, failed: 0, errors: [] as string[], bodies: new Map<string, number>() }
  let running = true
  const loops = Array.from({ length: clients }, async () => {
    while (running) {
      try {
        const { status, body } = await get(url)
        if (status === 200) {
          result.ok++
          result.bodies.set(body, (result.bodies.get(body) ?? 0) + 1)
        } else {
          result.failed++
          result.errors.push(`status ${status}`)
        }
      } catch (err) {
        result.failed++
        result.errors.push((err as Error).message)
      }
      await new Promise((resolve) => setTimeout(resolve, gapMs))
    }
  })
  return {
    seen: () => result,
    more: (n: number) => {
      const target = result.ok + result.failed + n
      return waitFor(() => result.ok + result.failed >= target, { what: `${n} more answers` })
    },
    async stop() {
      running = false
      await Promise.all(loops)
      return result
    },
  }
}

describe('a spare takes over', () => {
  it.skipIf(!hasSs())(
    'before it takes over, a spare accepts nothing and is not counted as serving',
    async ({ signal }) => {
      const metricsPort = await freePort()
      const metrics = `http://127.0.0.1:${metricsPort}`
      const { url, port, serving } = await start(['--metrics-bind', `127.0.0.1:${metricsPort}`], signal)
      // The serving worker stopped: a request waits in the kernel's queue, which the spare leaves alone.
      process.kill(serving, 'SIGSTOP')
      const answer = get(url, { timeoutMs: 60_000 })
      await waitFor(() => acceptQueueLength(port) === 1, { what: 'the request queued, accepted by nobody' })
      process.kill(serving, 'SIGCONT')
      expect((await answer).body).toBe(String(serving))
      const s = await scrape(metrics)
      expect(s.get('corral_workers{state="standby"}')).toBe(1)
      expect(s.get('corral_workers{state="running"}')).toBe(1)
      expect((await get(`${metrics}/readyz`)).status).toBe(200)
    },
  )

  it.skipIf(!hasSs())('after SIGKILL, with 0 failed requests', async ({ signal }) => {
    const { corral, url, port, until, pidsIn, serving, spare } = await start([], signal)
    const load = pacedStream(`${url}/`)
    await load.more(50)
    // Killed while it holds no connection (stopped first, so that what it holds cannot change
    // between the look and the kill): a request it held would die with it, spare or not; the
    // hand-over itself must lose nothing.
    for (;;) {
      process.kill(serving, 'SIGSTOP')
      if (!serverSideOwners(port).includes(String(serving))) break
      process.kill(serving, 'SIGCONT')
      await new Promise((resolve) => setImmediate(resolve))
    }
    process.kill(serving, 'SIGKILL')
    // The spare's pid is the serving worker now, and a new spare stands behind it.
    await until((rows) => pidsIn(rows, 'running').includes(spare) && pidsIn(rows, 'standby').length === 1)
    await waitFor(() => load.seen().bodies.has(String(spare)), { what: 'an answer from the former spare' })
    await load.more(50)
    const result = await load.stop()
    expect(result.errors).toEqual([])
    expect(result.failed).toBe(0)
    expect(isAlive(serving)).toBe(false)
    expect(corral.log()).toContain(`Standby worker (pid:${spare}) takes over`)
  })

  it('after --max-requests, with 0 failed requests', async ({ signal }) => {
    const { corral, url, until, pidsIn, serving, spare } = await start(['--max-requests', '40'], signal)
    // 70 requests: 40 retire the serving worker, the rest go to the spare, which stays below 40 itself.
    const load = startLoad(`${url}/`, { connections: 4, maxRequests: 70 })
    await until((rows) => pidsIn(rows, 'running').includes(spare) && !rows.some((w) => w.pid === serving))
    await waitFor(() => load.seen().ok + load.seen().failed === 70, { what: 'the 70 requests answered' })
    const result = await load.stop()
    expect(result.bodies.get(String(spare))).toBeGreaterThan(0)
    expect(result.errors).toEqual([])
    expect(result.failed).toBe(0)
    expect(result.bodies.get(String(serving))).toBeGreaterThanOrEqual(40)
    expect(corral.log()).toContain(`Standby worker (pid:${spare}) takes over`)
  })

  it('after a --timeout abort, with 0 failed requests besides the stuck one', async ({ signal }) => {
    const { corral, url, until, pidsIn, serving, spare } = await start(['-t', '2'], signal)
    const stuck = get(`${url}/spin`, { timeoutMs: 60_000 }).catch((err: Error) => err)
    await corral.waitForLog(new RegExp(`spinning: worker ${serving} is stuck on purpose`))
    // From now on every connection waits in the kernel's queue until the spare takes over.
    const load = startLoad(`${url}/`, { connections: 4 })
    await until((rows) => pidsIn(rows, 'running').includes(spare) && !rows.some((w) => w.pid === serving))
    await waitFor(() => load.seen().bodies.has(String(spare)), { what: 'an answer from the former spare' })
    await load.more(20)
    const result = await load.stop()
    expect(result.errors).toEqual([])
    expect(result.failed).toBe(0)
    // The request the worker was stuck in dies with it.
    expect(await stuck).toBeInstanceOf(Error)
    expect(corral.log()).toContain(`WORKER TIMEOUT (pid:${serving})`)
    expect(corral.log()).toContain(`Standby worker (pid:${spare}) takes over`)
  })
})
