// Workers' lives end to end: boot failures and their exit codes, the heartbeat
// kill with the stuck stack, crash-loop back-off, handler errors, fetch apps,
// and that no worker outlives its master.
import { afterEach, describe, expect, it } from 'vitest'
import { fixture, freePort, isAlive, killAll, startCorral, waitFor } from './helpers/corral.ts'
import { get } from './helpers/load.ts'

afterEach(killAll)

async function start(app: string, extra: string[] = [], signal?: AbortSignal) {
  const port = await freePort()
  const corral = startCorral(['-b', `127.0.0.1:${port}`, ...extra, fixture(app)], { signal })
  return { corral, url: `http://127.0.0.1:${port}` }
}

describe('boot failures', () => {
  it('an app that throws at import ends the master with exit 4 and the error in the log', async ({ signal }) => {
    const { corral } = await start('app-throws-at-import.ts', ['-w', '2'], signal)
    const { code } = await corral.exited
    expect(code).toBe(4)
    expect(corral.log()).toMatch(/database URL is not set \(thrown at import on purpose\)/)
    expect(corral.log()).toMatch(/\[CRITICAL\] App failed to load/)
  })

  it('a worker exiting 3 while booting ends the master with exit 3', async ({ signal }) => {
    const { corral } = await start('app-boot-error.ts', ['-w', '1'], signal)
    expect((await corral.exited).code).toBe(3)
    expect(corral.log()).toMatch(/Worker failed to boot/)
  })

  it('a missing app module is an app-load error (exit 4), with a one-line reason', async ({ signal }) => {
    const { corral } = await start('no-such-app.ts', ['-w', '1'], signal)
    expect((await corral.exited).code).toBe(4)
    expect(corral.log()).toMatch(/App module not found: .*no-such-app\.ts/)
    expect(corral.log()).not.toMatch(/^\s+at /m)
  })

  it('a crash loop after boot backs off instead of spinning', async ({ signal }) => {
    const { corral } = await start('app-crash-loop.ts', ['-w', '1'], signal)
    // Each young death doubles the wait before the next spawn: 100, 200, 400 ms…
    await corral.waitForLog(/respawning in 400 ms/)
    const delays = [...corral.log().matchAll(/respawning in (\d+) ms/g)].map((m) => Number(m[1]))
    expect(delays.slice(0, 3)).toEqual([100, 200, 400])
    // The master is alive and keeps trying: a crash loop is not a reason to halt.
    expect(corral.child.exitCode).toBe(null)
  })
})

describe('heartbeat', () => {
  it('replaces a worker stuck in an endless loop and logs the function it was stuck in', async ({ signal }) => {
    const { corral, url } = await start('app-pid.ts', ['-w', '1', '-t', '2'], signal)
    await corral.untilReady()
    const [stuck] = corral.workers()
    get(`${url}/spin`).catch(() => {})
    await corral.waitForLog(/spinning: worker \d+ is stuck on purpose/)
    const t0 = Date.now()
    await corral.waitForLog(new RegExp(`WORKER TIMEOUT \\(pid:${stuck}\\)`))
    // Not before its time: the last heartbeat came at most timeout / 2 = 1 s before it got stuck.
    expect(Date.now() - t0).toBeGreaterThanOrEqual(1000)
    await corral.waitForLog(/was stuck at:\n\s+at spinForever \(.*app-pid\.ts:\d+:\d+\)/)
    await waitFor(() => !isAlive(stuck!), { what: 'stuck worker to die' })
    const replacement = await waitFor(() => corral.workers().find((p) => p !== stuck), { what: 'replacement worker' })
    expect((await get(url)).body).toBe(String(replacement))
  })
})

describe('requests', () => {
  it('a handler that throws or rejects answers 500 and the worker keeps serving', async ({ signal }) => {
    const { corral, url } = await start('app-handler-throws.ts', ['-w', '1'], signal)
    await corral.untilReady()
    const [worker] = corral.workers()
    expect((await get(`${url}/throw`)).status).toBe(500)
    expect((await get(`${url}/reject`)).status).toBe(500)
    expect(await get(`${url}/`)).toMatchObject({ status: 200, body: 'fine' })
    expect(corral.workers()).toEqual([worker])
    // Worker log lines reach us through the master, possibly after the response.
    await corral.waitForLog(/Error handling request GET \/throw\nError: sync failure in handler\n\s+at /)
    await corral.waitForLog(/async failure in handler/)
  })

  it('serves a fetch(Request) → Response app', async ({ signal }) => {
    const { corral, url } = await start('app-fetch.ts', ['-w', '1'], signal)
    await corral.untilReady()
    const [worker] = corral.workers()
    expect(await get(`${url}/hello`)).toMatchObject({ status: 200, body: `fetch GET /hello from ${worker}` })
    expect((await get(`${url}/throw`)).status).toBe(500)
    await corral.waitForLog(/fetch handler failure/)
  })
})

describe('no orphans', () => {
  it('workers stop by themselves within a second when the master is SIGKILLed', async ({ signal }) => {
    const { corral } = await start('app-pid.ts', ['-w', '3'], signal)
    await corral.untilReady()
    const workers = corral.workers()
    expect(workers).toHaveLength(3)
    process.kill(corral.pid, 'SIGKILL')
    await corral.exited
    await waitFor(() => workers.every((pid) => !isAlive(pid)), {
      timeoutMs: 1000,
      what: 'workers to exit after the master died',
    })
  })
})
