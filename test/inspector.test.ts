// --inspector end to end (spec/inspector.md): a real master, its page in a
// real headless chromium, and the guards (token, Origin, Host) over plain
// HTTP. Then the exported timeline replayed through the pure machine in Node
// and in the playground page, which must agree with each other and with the
// master that recorded it.
import { readFileSync } from 'node:fs'
import { request } from 'node:http'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { buildInspector, INSPECTOR_PAGE } from '../scripts/build-inspector.ts'
import { replayAll, type TimelineFile } from '../src/inspector-ui/replay.ts'
import { browserForTests, staysLocal } from './helpers/browser.ts'
import { fixture, freePort, killAll, startCorral, waitFor, type Corral } from './helpers/corral.ts'

afterEach(killAll)
// Hang guards, not thresholds: a master, its workers and a browser on a busy machine.
vi.setConfig({ testTimeout: 120_000, hookTimeout: 120_000 })
const STARTED = { timeoutMs: 60_000 }

const browser = browserForTests(buildInspector)

async function serve(
  extra: string[],
  signal: AbortSignal,
  env: NodeJS.ProcessEnv = {},
): Promise<{ corral: Corral; url: string; base: string }> {
  const port = await freePort()
  const corral = startCorral(
    ['-b', `127.0.0.1:${port}`, '--inspector', '127.0.0.1:0', ...extra, fixture('app-slow-boot.ts')],
    { signal, env: { ...process.env, BOOT_DELAY_MS: '0', ...env } },
  )
  const [, url] = await corral.waitForLog(/Inspector at: (http:\/\/127\.0\.0\.1:\d+\/\?token=[0-9a-f]+)/)
  await corral.untilReady()
  return { corral, url: url!, base: new URL(url!).origin }
}

function raw(
  url: string,
  headers: Record<string, string> = {},
  method = 'GET',
): Promise<{ status: number; body: string; type: string | undefined }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, headers }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (c: string) => {
        body += c
      })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, type: res.headers['content-type'] }))
    })
    req.on('error', reject)
    req.end()
  })
}

const ACTIVE = (id: string) => `#master-chart g.state.active[data-state="${id}"]`
const WORKER_ACTIVE = (id: number, state: string) =>
  `#worker-charts figure[data-worker="${id}"] g.state.active[data-state="worker.${state}"]`

/** What the master told a worker at its start: CORRAL_WORKER as it was in the worker's initial environment. */
function workerOptions(pid: number): { inspector?: true } {
  const environ = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0')
  const told = environ.find((v) => v.startsWith('CORRAL_WORKER='))
  return JSON.parse(told!.slice('CORRAL_WORKER='.length))
}

interface WorkerEntry {
  kind: string
  worker?: number
  event?: { type: string; signal?: string }
  from?: string
  value?: string
}

describe('--inspector', () => {
  it('shows every worker with its pid, a TTIN as a new worker and a timeline entry, live and without errors or requests off loopback', async ({
    signal,
  }) => {
    const { corral, url } = await serve(['-w', '2'], signal)
    const { page, errors, requests } = browser
    await page.goto('about:blank')
    errors.length = 0
    requests.length = 0
    await page.goto(url)
    await page.waitForSelector('body[data-connected="true"]')
    await page.waitForSelector(ACTIVE('master.active.running.steady'))
    const pids = corral.workers()
    expect(pids).toHaveLength(2)
    for (const pid of pids) await page.waitForSelector(`#workers td.pid:text-is("${pid}")`)

    await page.click('button[data-signal="TTIN"]')
    await page.waitForFunction(() => document.querySelectorAll('#workers tr').length === 3)
    await page.waitForSelector('#timeline li.inspector:has-text("TTIN")')
    await page.waitForSelector('#timeline li.event:has-text("TTIN")')
    await corral.untilReady({ workers: 3 })
    // The third worker's pid, once the master has it.
    await page.waitForFunction(
      () =>
        Array.from(document.querySelectorAll('#workers td.pid')).filter((td) => /^\d+$/.test(td.textContent ?? ''))
          .length === 3,
    )
    expect(errors).toEqual([])
    expect(requests.filter((r) => !staysLocal(r))).toEqual([])
  })

  it("a worker row's kill button (confirmed) is the chart's KILL_WORKER: that worker goes, another takes its place", async ({
    signal,
  }) => {
    const { corral, url } = await serve(['-w', '2'], signal)
    const { page } = browser
    await page.goto(url)
    await page.waitForSelector('body[data-connected="true"]')
    const [victim, survivor] = corral.workers()
    await page.waitForSelector(`#workers td.pid:text-is("${victim}")`)
    page.once('dialog', (d) => void d.accept())
    await page.click(`#workers tr:has(td.pid:text-is("${victim}")) button[data-kill]`)
    await page.waitForSelector('#timeline li.inspector:has-text("worker kill")')
    await page.waitForSelector('#timeline li.event:has-text("KILL_WORKER")')
    const now = await waitFor(() => {
      const w = corral.workers()
      return w.length === 2 && !w.includes(victim!) && w
    }, STARTED)
    expect(now).toContain(survivor)
    await page.waitForSelector(`#workers td.pid:text-is("${now.find((p) => p !== survivor)}")`)
  })

  it('highlights the reload state during a HUP, then steady; an old timeline entry shows the state as it was', async ({
    signal,
  }) => {
    // Workers that take a while to boot keep the master in reloading long enough to be seen.
    const { url } = await serve(['-w', '1'], signal, { BOOT_DELAY_MS: '1500' })
    const { page } = browser
    await page.goto(url)
    await page.waitForSelector(ACTIVE('master.active.running.steady'))
    await page.click('button[data-signal="HUP"]')
    await page.waitForSelector(ACTIVE('master.active.running.reloading'))
    await page.waitForSelector(ACTIVE('master.active.running.steady'))
    expect(await page.locator(ACTIVE('master.active.running.reloading')).count()).toBe(0)

    // Time travel: the entry of the HUP's settings shows the chart in reloading, the transition taken lit.
    await page.click('#timeline li.event:has-text("SETTINGS_READ")')
    await page.waitForSelector(ACTIVE('master.active.running.reloading'))
    expect(await page.locator('#master-chart polyline.edge.taken').count()).toBeGreaterThan(0)
    expect(await page.textContent('#viewing')).toMatch(/^as of #\d+/)
    await page.click('#follow')
    await page.waitForSelector(ACTIVE('master.active.running.steady'))
  })

  it("each worker's chart is its own machine as the worker reports it: running once it serves, draining and dead after a TTOU", async ({
    signal,
  }) => {
    const { corral, url, base } = await serve(['-w', '2'], signal)
    const token = new URL(url).searchParams.get('token')!
    // Told to report only because --inspector is on (the test below: not told without it).
    for (const pid of corral.workers()) expect(workerOptions(pid).inspector).toBe(true)
    const { page, errors } = browser
    await page.goto('about:blank')
    errors.length = 0
    await page.goto(url)
    await page.waitForSelector('body[data-connected="true"]')
    await page.waitForFunction(() => document.querySelectorAll('#workers tr').length === 2)
    const ids = await page.$$eval('#workers tr', (trs) => trs.map((tr) => Number((tr as HTMLElement).dataset.worker)))
    // Each worker's chart is one click away, on the chart tabs.
    for (const id of ids) {
      await page.click(`#chart-tabs button[data-chart="worker-${id}"]`)
      await page.waitForSelector(WORKER_ACTIVE(id, 'running'))
    }
    // What the workers reported: their own machines' start, APP_EXPORTED and LOADED, booting → starting → running.
    const reports = (id: number) =>
      page.evaluate(
        (id) =>
          (window as unknown as { corral: { timeline(): WorkerEntry[] } }).corral
            .timeline()
            .filter((e) => e.kind === 'worker' && e.worker === id)
            .map((e) => [e.event?.type, e.event?.signal, e.value]),
        id,
      )
    for (const id of ids)
      expect(await reports(id)).toEqual([
        ['xstate.init', undefined, 'booting'],
        ['APP_EXPORTED', undefined, 'starting'],
        ['LOADED', undefined, 'running'],
      ])
    // The master's view stays in the table.
    expect(await page.$$eval('#workers tr td:nth-child(4)', (tds) => tds.map((td) => td.textContent))).toEqual([
      'running',
      'running',
    ])

    // TTOU: the master stops one worker gracefully; that worker's machine takes SIGNAL TERM into draining, then DRAINED into dead.
    await page.click('button[data-signal="TTOU"]')
    await page.waitForFunction(() => document.querySelectorAll('#workers tr').length === 1)
    const [left] = await page.$$eval('#workers tr', (trs) =>
      trs.map((tr) => Number((tr as HTMLElement).dataset.worker)),
    )
    const removed = ids.find((id) => id !== left)!
    await page.waitForFunction(
      (id) =>
        (window as unknown as { corral: { timeline(): WorkerEntry[] } }).corral
          .timeline()
          .some((e) => e.kind === 'worker' && e.worker === id && e.value === 'dead'),
      removed,
    )
    expect(await reports(removed)).toEqual([
      ['xstate.init', undefined, 'booting'],
      ['APP_EXPORTED', undefined, 'starting'],
      ['LOADED', undefined, 'running'],
      ['SIGNAL', 'TERM', 'draining'],
      ['DRAINED', undefined, 'dead'],
    ])
    // The same, as the export (and the SSE feed it came from) has it.
    const file = JSON.parse((await raw(`${base}/timeline.json?token=${token}`)).body) as { timeline: WorkerEntry[] }
    expect(
      file.timeline.filter((e) => e.kind === 'worker' && e.worker === removed).map((e) => [e.event?.type, e.value]),
    ).toEqual([
      ['xstate.init', 'booting'],
      ['APP_EXPORTED', 'starting'],
      ['LOADED', 'running'],
      ['SIGNAL', 'draining'],
      ['DRAINED', 'dead'],
    ])
    // Time travel to its SIGNAL: the removed worker's chart in draining, the transition lit.
    await page.click(`#timeline li.worker:has-text("worker ${removed}: SIGNAL")`)
    await page.click(`#chart-tabs button[data-chart="worker-${removed}"]`)
    await page.waitForSelector(WORKER_ACTIVE(removed, 'draining'))
    expect(await page.locator(`#worker-charts figure[data-worker="${removed}"] polyline.edge.taken`).count()).toBe(1)
    await page.click('#follow')
    await page.waitForSelector(`#worker-charts figure[data-worker="${removed}"]`, { state: 'detached' })
    expect(errors).toEqual([])
  })

  it('does not ask workers to report their machine without --inspector', async ({ signal }) => {
    const port = await freePort()
    const corral = startCorral(['-b', `127.0.0.1:${port}`, '-w', '1', fixture('app-slow-boot.ts')], {
      signal,
      env: { ...process.env, BOOT_DELAY_MS: '0' },
    })
    await corral.untilReady()
    const [pid] = corral.workers()
    const told = workerOptions(pid!)
    expect(told).toHaveProperty('settings')
    expect(told).not.toHaveProperty('inspector')
  })

  it('refuses a request without the token (401), with a wrong one, a foreign Origin or a foreign Host (403)', async ({
    signal,
  }) => {
    const { url, base } = await serve(['-w', '1'], signal)
    const token = new URL(url).searchParams.get('token')!
    const port = new URL(base).port
    expect((await raw(url)).status).toBe(200)
    expect((await raw(`${base}/`)).status).toBe(401)
    expect((await raw(`${base}/events`)).status).toBe(401)
    expect((await raw(`${base}/?token=${'0'.repeat(token.length)}`)).status).toBe(403)
    expect((await raw(`${base}/?token=x`)).status).toBe(403)
    expect((await raw(url, { origin: 'http://evil.example' })).status).toBe(403)
    expect((await raw(url, { origin: base })).status).toBe(200)
    // DNS rebinding: a name that resolves here but is not ours.
    expect((await raw(url, { host: `evil.example:${port}` })).status).toBe(403)
    expect((await raw(url, { host: `localhost:${port}` })).status).toBe(200)
    // A cross-site form cannot steer it: the POST is refused before it becomes a signal.
    expect(
      (await raw(`${base}/send?token=${token}&signal=TERM`, { origin: 'http://evil.example' }, 'POST')).status,
    ).toBe(403)
    expect((await raw(`${base}/send?token=${token}&signal=KILL`, {}, 'POST')).status).toBe(400)
  })

  it('refuses to listen off loopback without --inspector-allow-remote', async ({ signal }) => {
    const port = await freePort()
    const corral = startCorral(['-b', `127.0.0.1:${port}`, '--inspector', '0.0.0.0:0', fixture('app-slow-boot.ts')], {
      signal,
      env: { ...process.env, BOOT_DELAY_MS: '0' },
    })
    expect((await corral.exited).code).toBe(1)
    expect(corral.log()).toMatch(/not a loopback address; add --inspector-allow-remote/)
  })

  it('exports a timeline that the machine in Node and the playground replay to the state the master reached', async ({
    signal,
  }) => {
    const { corral, url, base } = await serve(['-w', '2'], signal)
    const token = new URL(url).searchParams.get('token')!
    corral.signal('SIGTTIN')
    await corral.untilReady({ workers: 3 })
    corral.signal('SIGHUP')
    await corral.untilMachine('the HUP taken', (m) => m.generation === 1)
    corral.signal('SIGTTOU')
    await corral.untilMachine('the TTOU taken', (m) => m.target === 2)
    // The export as the master has it now; its last event's state is where the master is.
    const res = await raw(`${base}/timeline.json?token=${token}`)
    expect(res.type).toBe('application/json')
    const file = JSON.parse(res.body) as TimelineFile
    const events = file.timeline.filter((e) => e.kind === 'event')
    expect(events.some((e) => e.event?.type === 'HUP')).toBe(true)
    const recorded = (events.at(-1) as { value?: unknown }).value

    const node = replayAll(file).getSnapshot()
    expect(node.value).toEqual(recorded)

    const { page, errors } = browser
    // Away from any live page first: its feed retrying a master that is gone is that page's error, not this one's.
    await page.goto('about:blank')
    errors.length = 0
    await page.goto(`file://${INSPECTOR_PAGE}`)
    await page.waitForSelector('body[data-ready="true"]')
    const inPage = await page.evaluate((f) => {
      const api = (window as unknown as { corral: { load(f: unknown): void; step(): void; state(): unknown } }).corral
      api.load(f)
      for (let i = 0; i < f.timeline.length; i++) api.step()
      return api.state()
    }, file)
    expect(inPage).toEqual({ value: node.value, context: node.context })
    expect(errors).toEqual([])
  })
})
