// The signal contract, end to end: real corral masters, real workers, real
// signals and sockets on loopback.
import { afterEach, describe, expect, it } from 'vitest'
import { fixture, freePort, isAlive, killAll, startCorral, waitFor, type Corral } from './helpers/corral.ts'
import { get, inFlight, startLoad } from './helpers/load.ts'

afterEach(killAll)

async function serve(
  workers: number,
  extra: string[] = [],
  signal?: AbortSignal,
  app = 'app-pid.ts',
): Promise<{ corral: Corral; url: string }> {
  const port = await freePort()
  const corral = startCorral(['-w', String(workers), '-b', `127.0.0.1:${port}`, ...extra, fixture(app)], { signal })
  await corral.untilReady()
  return { corral, url: `http://127.0.0.1:${port}` }
}

const workerCount = (corral: Corral, n: number) =>
  waitFor(() => corral.workers().length === n, { what: `${n} workers` })

describe('scaling', () => {
  it('-w 2 gives 2 workers; TTIN → 3; TTOU → 2, and never below 1', async ({ signal }) => {
    const { corral, url } = await serve(2, [], signal)
    expect(corral.workers()).toHaveLength(2)
    corral.signal('SIGTTIN')
    await workerCount(corral, 3)
    corral.signal('SIGTTOU')
    await workerCount(corral, 2)
    corral.signal('SIGTTOU')
    await workerCount(corral, 1)
    corral.signal('SIGTTOU')
    await corral.waitForLog(/TTOU ignored: one worker is the minimum/)
    expect(corral.workers()).toHaveLength(1)
    expect((await get(url)).status).toBe(200)
  })

  it('replaces a worker killed with SIGKILL', async ({ signal }) => {
    const { corral, url } = await serve(2, [], signal)
    const [victim, survivor] = corral.workers()
    process.kill(victim!, 'SIGKILL')
    await corral.waitForLog(new RegExp(`Worker \\(pid:${victim}\\) was sent SIGKILL`))
    const now = await waitFor(() => {
      const w = corral.workers()
      return w.length === 2 && !w.includes(victim!) && w
    })
    expect(now).toContain(survivor)
    expect((await get(url)).status).toBe(200)
  })
})

describe('reload (HUP)', () => {
  for (const keepAlive of [false, true]) {
    it(`starts a whole new generation with 0 failed requests under load (${keepAlive ? 'keep-alive' : 'new connection per request'})`, async ({
      signal,
    }) => {
      const { corral, url } = await serve(2, [], signal)
      const before = corral.workers()
      const load = startLoad(url, { connections: 4, keepAlive })
      await waitFor(() => load.seen().ok >= 20, { what: 'the load to be answered' })
      corral.signal('SIGHUP')
      await corral.untilReloaded(1)
      // The old generation drains; keep the load on until every old worker is gone.
      await waitFor(() => before.every((pid) => !isAlive(pid)), { what: 'old generation to exit' })
      const after = corral.workers()
      await waitFor(() => after.some((pid) => load.seen().bodies.has(String(pid))), {
        what: 'the new generation to answer the load',
      })
      const result = await load.stop()
      expect(after).toHaveLength(2)
      expect(after.filter((pid) => before.includes(pid))).toEqual([])
      expect(result.errors.slice(0, 5)).toEqual([])
      expect(result.failed).toBe(0)
      // Both generations answered during the run.
      const pids = new Set(result.bodies.keys())
      expect(before.some((pid) => pids.has(String(pid)))).toBe(true)
      expect(after.some((pid) => pids.has(String(pid)))).toBe(true)
    })
  }

  it('coalesces HUPs that arrive during a reload into one more reload', async ({ signal }) => {
    // Workers take a second to boot, so the reload is still in flight while we signal.
    const { corral } = await serve(1, [], signal, 'app-slow-boot.ts')
    corral.signal('SIGHUP')
    await corral.untilMachine(
      'generation 1 booting',
      (m) => m.state === 'active.running.reloading' && m.generation === 1,
    )
    // The kernel merges a signal sent while the same one is pending, so let
    // the master see each HUP before sending the next.
    for (const expected of [/Reload queued until/, /Reload already queued/]) {
      const mark = corral.log().length
      corral.signal('SIGHUP')
      await corral.waitForLog(expected, { from: mark })
    }
    await corral.untilReloaded(2)
    // A third reload would start in the same step that completes the second
    // (a queued HUP is taken as soon as the master is steady), and the master
    // handles its inputs in order: once a later signal is logged, a third
    // reload would have been logged before it.
    const mark = corral.log().length
    corral.signal('SIGUSR1')
    await corral.waitForLog(/Handling signal: usr1/, { from: mark })
    expect(corral.log()).not.toMatch(/generation 3/)
    expect(corral.log().match(/Reloading: starting worker generation/g)?.length).toBe(2)
  })
})

describe('stopping', () => {
  for (const sig of ['SIGTERM', 'SIGQUIT'] as const) {
    it(`${sig} lets an in-flight 1.5 s request finish with 200, then exits 0`, async ({ signal }) => {
      const { corral, url } = await serve(2, [], signal)
      const workers = corral.workers()
      const { done } = await inFlight(`${url}/hold?ms=1500`)
      corral.signal(sig)
      const res = await done
      if (res instanceof Error) throw res
      expect(res.status).toBe(200)
      expect(workers).toContain(Number(res.body))
      expect((await corral.exited).code).toBe(0)
      expect(workers.filter(isAlive)).toEqual([])
    })
  }

  // A quick stop is told from a graceful one by what happens to a request
  // in flight, not by a stopwatch: the request (far longer than the test's
  // own timeout) is cut short, where a graceful stop would have waited for it.
  it('INT stops quickly, cutting a request in flight short', async ({ signal }) => {
    const { corral, url } = await serve(2, ['--graceful-timeout', '60'], signal)
    const workers = corral.workers()
    const { done } = await inFlight(`${url}/hold?ms=600000`)
    corral.signal('SIGINT')
    expect((await corral.exited).code).toBe(0)
    expect(await done).toBeInstanceOf(Error)
    expect(workers.filter(isAlive)).toEqual([])
  })

  it('a second TERM turns a graceful stop into a quick one', async ({ signal }) => {
    const { corral, url } = await serve(1, ['--graceful-timeout', '60'], signal)
    const { done } = await inFlight(`${url}/hold?ms=600000`)
    let mark = corral.log().length
    corral.signal('SIGTERM')
    await corral.waitForLog(/Handling signal: term/, { from: mark })
    mark = corral.log().length
    corral.signal('SIGTERM')
    await corral.waitForLog(/Handling signal: term/, { from: mark })
    expect((await corral.exited).code).toBe(0)
    expect(await done).toBeInstanceOf(Error)
  })

  it('SIGKILLs a worker that outlives --graceful-timeout', async ({ signal }) => {
    const { corral, url } = await serve(1, ['--graceful-timeout', '1'], signal)
    await inFlight(`${url}/hold?ms=600000`)
    corral.signal('SIGTERM')
    await corral.waitForLog(/did not stop in time; sending SIGKILL/)
    expect((await corral.exited).code).toBe(0)
  })

  it('writes the pidfile with the master pid and removes it on exit', async ({ signal }) => {
    const { mkdtempSync, readFileSync, existsSync } = await import('node:fs')
    const pidfile = `${mkdtempSync('/tmp/corral-pid-')}/corral.pid`
    const { corral } = await serve(1, ['-p', pidfile], signal)
    expect(readFileSync(pidfile, 'utf8').trim()).toBe(String(corral.pid))
    corral.signal('SIGTERM')
    await corral.exited
    expect(existsSync(pidfile)).toBe(false)
  })
})

// USR2 and WINCH: see e2e-upgrade.test.ts.
describe('other signals', () => {
  it('USR1 reopens logs in the master and tells every worker', async ({ signal }) => {
    const { corral } = await serve(2, [], signal)
    const mark = corral.log().length
    corral.signal('SIGUSR1')
    await corral.waitForLog(/\[INFO\] Handling signal: usr1/, { from: mark })
    // Each worker logs under its own pid.
    for (const pid of corral.workers())
      await corral.waitForLog(new RegExp(`\\[${pid}\\] \\[INFO\\] Reopening log files`), { from: mark })
    expect(corral.workers()).toHaveLength(2)
  })
})
