// Server hooks end to end (spec/hooks.md): one real master, driven through
// start, a request, TTIN, HUP, a worker's SIGINT, a stuck worker, USR2 and a
// stop, with a config file whose every hook appends a JSON line to a file.
// Each hook is checked for the process it ran in (the master's pid or a
// worker's), its order relative to the others, and its arguments.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { fixture, freePort, isAlive, killAll, pidIn, startCorral, track, waitFor } from './helpers/corral.ts'
import { get } from './helpers/load.ts'

afterEach(killAll)

const tmp = mkdtempSync(join(tmpdir(), 'corral-hooks-'))
afterAll(() => rmSync(tmp, { recursive: true, force: true }))

const CONFIG = fixture('hooks-config.ts')
const APP = fixture('hooks-app.ts')

interface Line {
  hook: string
  pid: number
  role: 'master' | 'worker'
  t: number
  [arg: string]: unknown
}

/** The hooks that ran so far, in the order they ran (lines are appended as they run). */
function readHooks(file: string): Line[] {
  let text = ''
  try {
    text = readFileSync(file, 'utf8')
  } catch {
    return []
  }
  return text
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Line)
}

/** Index of the first line matching, -1 if none. */
const indexOf = (lines: Line[], hook: string, where: Partial<Line> = {}) =>
  lines.findIndex(
    (l) => l.hook === hook && Object.entries(where).every(([k, v]) => JSON.stringify(l[k]) === JSON.stringify(v)),
  )

const waitForHook = (file: string, hook: string, where: Partial<Line> = {}, timeoutMs?: number) =>
  waitFor(
    () => {
      const lines = readHooks(file)
      const i = indexOf(lines, hook, where)
      return i >= 0 ? lines[i] : undefined
    },
    { timeoutMs, what: `${hook} ${JSON.stringify(where)}` },
  )

/** Asserts that these lines exist and appear in this order. */
function expectOrder(lines: Line[], ...steps: [string, Partial<Line>][]): void {
  let last = -1
  for (const [hook, where] of steps) {
    const i = indexOf(lines, hook, where)
    expect(i, `${hook} ${JSON.stringify(where)} ran`).toBeGreaterThanOrEqual(0)
    expect(i, `${hook} ${JSON.stringify(where)} ran after the step before it`).toBeGreaterThan(last)
    last = i
  }
}

describe('server hooks', () => {
  it('each fires in its process, in gunicorn order, with its arguments', { timeout: 60_000 }, async ({ signal }) => {
    const log = join(tmp, 'lifecycle.jsonl')
    const pidfile = join(tmp, 'lifecycle.pid')
    const port = await freePort()
    const url = `http://127.0.0.1:${port}`
    const corral = startCorral(['-c', CONFIG, '-w', '2', '-t', '3', '-b', `127.0.0.1:${port}`, '-p', pidfile, APP], {
      env: { HOOKS_LOG: log },
      signal,
    })
    const master = corral.pid
    await corral.untilReady()

    // Start: nworkersChanged as the number is set, onStarting before binding,
    // whenReady once bound, then per worker preFork (master) → postFork →
    // postWorkerInit (worker), and all of it before "Ready".
    let lines = readHooks(log)
    const workers = corral.workers()
    expect(workers).toHaveLength(2)
    expect(lines.slice(0, 3)).toMatchObject([
      { hook: 'nworkersChanged', pid: master, role: 'master', newValue: 2, oldValue: null },
      { hook: 'onStarting', pid: master, role: 'master', masterPid: master, listeners: 0, numWorkers: 2 },
      { hook: 'whenReady', pid: master, role: 'master', listeners: [url], workers: 0 },
    ])
    for (const id of [1, 2]) {
      const worker = lines.find((l) => l.hook === 'postFork' && l.id === id)!
      expect(workers).toContain(worker.pid)
      expect(worker).toMatchObject({
        role: 'worker',
        masterPid: master,
        workerPid: worker.pid,
        ppid: master,
        booted: false,
      })
      expectOrder(
        lines,
        ['whenReady', {}],
        ['preFork', { id, pid: master, workerPid: null, generation: 0 }],
        ['postFork', { id, pid: worker.pid }],
        ['postWorkerInit', { id, pid: worker.pid, workerPid: worker.pid, ppid: master }],
      )
    }

    // A request: preRequest (awaited: the app sees what it set) and
    // postRequest with the response, in the worker that served it.
    const res = await get(`${url}/hello`)
    expect(res.status).toBe(200)
    const served = JSON.parse(res.body) as { pid: number; pre: string | null }
    expect(served.pre).toMatch(/^seen by [12]$/)
    await waitForHook(log, 'postRequest', { url: '/hello' })
    lines = readHooks(log)
    expectOrder(
      lines,
      ['preRequest', { url: '/hello', pid: served.pid, workerPid: served.pid }],
      ['postRequest', { url: '/hello', pid: served.pid, status: 200 }],
    )

    // TTIN: nworkersChanged(3, 2), then the third worker's preFork.
    corral.signal('SIGTTIN')
    await waitForHook(log, 'postWorkerInit', { id: 3 })
    expectOrder(
      readHooks(log),
      ['nworkersChanged', { pid: master, newValue: 3, oldValue: 2 }],
      ['preFork', { id: 3, pid: master }],
      ['postFork', { id: 3 }],
    )

    // HUP: the re-read settings say 2 workers again (nworkersChanged), then
    // onReload before the new generation's preForks; each old worker runs
    // workerExit in itself, then childExit runs in the master.
    const generation0 = readHooks(log)
      .filter((l) => l.hook === 'postFork')
      .map((l) => l.pid)
    corral.signal('SIGHUP')
    await corral.untilReloaded(1)
    for (const pid of generation0) await waitForHook(log, 'childExit', { workerPid: pid })
    lines = readHooks(log)
    expectOrder(
      lines,
      ['nworkersChanged', { newValue: 2, oldValue: 3 }],
      ['onReload', { pid: master, numWorkers: 2 }],
      ['preFork', { generation: 1 }],
    )
    expect(lines.filter((l) => l.hook === 'preFork' && l.generation === 1).every((l) => l.pid === master)).toBe(true)
    expect(lines.filter((l) => l.hook === 'onReload')).toHaveLength(1)
    for (const pid of generation0) {
      expectOrder(
        lines,
        ['workerExit', { pid, workerPid: pid, masterPid: master, booted: true }],
        ['childExit', { pid: master, workerPid: pid, exitCode: 0, signal: null }],
      )
    }

    // SIGINT to a worker: workerInt then workerExit in it, childExit in the
    // master, then its replacement's preFork.
    const [interrupted] = corral.workers()
    process.kill(interrupted!, 'SIGINT')
    await waitForHook(log, 'childExit', { workerPid: interrupted })
    const exitAt = indexOf(readHooks(log), 'childExit', { workerPid: interrupted })
    await waitFor(
      () =>
        readHooks(log)
          .slice(exitAt)
          .some((l) => l.hook === 'postWorkerInit') || undefined,
      { what: 'a replacement worker' },
    )
    lines = readHooks(log)
    expectOrder(
      lines,
      ['workerInt', { pid: interrupted, workerPid: interrupted, alive: false }],
      ['workerExit', { pid: interrupted }],
      ['childExit', { pid: master, workerPid: interrupted }],
    )
    expect(lines.slice(exitAt).find((l) => l.hook === 'preFork')).toMatchObject({ pid: master, generation: 1 })

    // A stuck worker: workerAbort runs in the master with the stack it is
    // stuck in, before the worker is killed (childExit: SIGKILL).
    const before = readHooks(log).length
    void get(`${url}/spin`, { timeoutMs: 20_000 }).catch(() => {})
    const spun = await waitForHook(log, 'preRequest', { url: '/spin' })
    const aborted = await waitForHook(log, 'workerAbort', { workerPid: spun.pid })
    expect(aborted.pid).toBe(master)
    expect((aborted['stack'] as string[])[0]).toMatch(/^stuckInHooksApp /)
    await waitForHook(log, 'childExit', { workerPid: spun.pid })
    lines = readHooks(log)
    expectOrder(
      lines.slice(before),
      ['workerAbort', { workerPid: spun.pid }],
      ['childExit', { pid: master, workerPid: spun.pid, exitCode: null, signal: 'SIGKILL' }],
    )
    expect(indexOf(lines, 'workerExit', { pid: spun.pid }), 'a killed worker runs no workerExit').toBe(-1)
    // Its replacement (spawned as the stuck one is aborted) serves before the next step.
    await waitFor(
      () =>
        readHooks(log)
          .slice(before)
          .some((l) => l.hook === 'postWorkerInit') || undefined,
      { what: 'the stuck worker replaced' },
    )

    // USR2: preExec in this master, then the new master's own hooks start,
    // in its own process; stopping it runs its onExit.
    corral.signal('SIGUSR2')
    const fresh = await waitFor(
      () => {
        const pid = pidIn(pidfile)
        return pid !== undefined && pid !== master && pid
      },
      { what: 'the new master to be ready' },
    )
    track(fresh)
    lines = readHooks(log)
    expectOrder(
      lines,
      ['preExec', { pid: master, masterPid: master }],
      ['nworkersChanged', { pid: fresh, oldValue: null }],
      ['onStarting', { pid: fresh }],
      ['whenReady', { pid: fresh, listeners: [url] }],
      ['preFork', { pid: fresh, id: 1 }],
    )
    process.kill(fresh, 'SIGTERM')
    await waitForHook(log, 'onExit', { pid: fresh })
    await waitFor(() => !isAlive(fresh) || undefined, { what: 'the new master to exit' })

    // Stop: every worker's workerExit, then childExit, and onExit last.
    await corral.untilMachine(
      'this master in charge again',
      (m) => m.childMaster === 'none' && m.state === 'active.running.steady',
    )
    const last = corral.workers()
    const stopAt = readHooks(log).length
    corral.signal('SIGTERM')
    expect((await corral.exited).code).toBe(0)
    lines = readHooks(log).slice(stopAt)
    for (const pid of last)
      expectOrder(lines, ['workerExit', { pid }], ['childExit', { pid: master, workerPid: pid, exitCode: 0 }])
    expect(lines.at(-1)).toMatchObject({ hook: 'onExit', pid: master, masterPid: master })
    expect(corral.log()).not.toMatch(/Hook \w+ failed/)
  })

  it('a throwing onStarting stops corral with exit 1 and the reason, before anything is bound', async ({ signal }) => {
    const log = join(tmp, 'on-starting.jsonl')
    const port = await freePort()
    const corral = startCorral(['-c', CONFIG, '-w', '1', '-b', `127.0.0.1:${port}`, APP], {
      env: { HOOKS_LOG: log, HOOKS_THROW: 'onStarting' },
      signal,
    })
    expect((await corral.exited).code).toBe(1)
    expect(corral.log()).toMatch(/\[ERROR\] Hook onStarting failed: onStarting exploded\n/)
    expect(corral.log()).toMatch(/\[ERROR\] onStarting hook failed: onStarting exploded; not starting\n/)
    expect(corral.log()).not.toMatch(/Listening at/)
    expect(readHooks(log).map((l) => l.hook)).toEqual(['nworkersChanged', 'onStarting'])
  })

  it('an uncaught exception goes the machine’s way out: workerExit runs, exit 1, logged once, a new worker serves', {
    timeout: 60_000,
  }, async ({ signal }) => {
    const log = join(tmp, 'crash.jsonl')
    const port = await freePort()
    const url = `http://127.0.0.1:${port}`
    const corral = startCorral(['-c', CONFIG, '-w', '1', '-b', `127.0.0.1:${port}`, APP], {
      env: { HOOKS_LOG: log },
      signal,
    })
    await corral.untilReady()
    const [victim] = corral.workers()
    expect((await get(`${url}/crash`)).status).toBe(200)
    const exit = await waitForHook(log, 'childExit', { workerPid: victim })
    expect(exit).toMatchObject({ role: 'master', exitCode: 1, signal: null })
    const lines = readHooks(log)
    expectOrder(lines, ['workerExit', { pid: victim, workerPid: victim }], ['childExit', { workerPid: victim }])
    // One report of the crash, with its stack, in the worker's own words. The worker's stderr reaches this
    // process through a pipe, the hook's line through a file: the report may come after the hook's line.
    await corral.waitForLog(/Uncaught exception in worker; exiting: Error: crash on purpose\n\s+at /)
    const reports = corral.log().match(/Uncaught exception in worker; exiting: Error: crash on purpose\n\s+at /g)
    expect(reports).toHaveLength(1)
    expect(corral.log().match(/Uncaught exception/g)).toHaveLength(1)
    const replacement = await waitFor(
      async () => {
        const r = await get(`${url}/`).catch(() => undefined)
        const pid = r?.status === 200 ? (JSON.parse(r.body) as { pid: number }).pid : undefined
        return pid !== undefined && pid !== victim ? pid : undefined
      },
      { what: 'a new worker serving' },
    )
    expect(replacement).not.toBe(victim)
  })

  it('without worker-side hooks a worker never imports the config file', async ({ signal }) => {
    const log = join(tmp, 'master-only.jsonl')
    const config = join(tmp, 'master-only.config.ts')
    writeFileSync(
      config,
      `import { appendFileSync } from 'node:fs'\n` +
        `appendFileSync(${JSON.stringify(log)}, JSON.stringify({ hook: 'imported', pid: process.pid }) + '\\n')\n` +
        `export default { whenReady(server: { pid: number }) { appendFileSync(${JSON.stringify(log)}, JSON.stringify({ hook: 'whenReady', pid: server.pid }) + '\\n') } }\n`,
    )
    const port = await freePort()
    const corral = startCorral(['-c', config, '-w', '2', '-b', `127.0.0.1:${port}`, APP], { signal })
    await corral.untilReady()
    expect((await get(`http://127.0.0.1:${port}/`)).status).toBe(200)
    expect(readHooks(log)).toEqual([
      { hook: 'imported', pid: corral.pid },
      { hook: 'whenReady', pid: corral.pid },
    ])
  })
})
