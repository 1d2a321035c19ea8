// The dirty pool end to end (spec/dirty.md): real masters, real dirty
// workers, calls from a real HTTP worker's app (test/fixtures/app-dirty.ts)
// to test/fixtures/dirty-app.ts.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it, onTestFinished } from 'vitest'
import { answer, untilMaster, untilReady } from './helpers/control.ts'
import type { DirtyRow } from '../src/protocol/control.ts'
import {
  fixture,
  freePort,
  isAlive,
  killAll,
  pidIn,
  startCorral,
  track,
  waitFor,
  type Corral,
} from './helpers/corral.ts'

afterEach(killAll)

const LAB = `lab=${fixture('dirty-app.ts')}:Lab`
const OTHER = `other=${fixture('dirty-app.ts')}:other`

interface Answer {
  body: { value?: unknown; worker?: number; code?: string; message?: string; stack?: string }
}

/** A call made by the HTTP app; resolves once the app has made it, with its answer to come. */
async function started(port: number, path: string): Promise<{ answer: Promise<Answer> }> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`)
  return { answer: res.json().then((body) => ({ body: body as Answer['body'] })) }
}

/** `corral ctl show dirty`, asked until `probe` accepts it. */
const untilDirty = (corral: Corral, probe: (rows: readonly DirtyRow[]) => boolean, signal: AbortSignal) =>
  untilMaster(corral.controlSocket as string, ['show', 'dirty'], 'dirty', (d) => probe(d.dirty) && d.dirty, signal)

const call = async (port: number, path: string): Promise<Answer> => (await started(port, path)).answer

async function start(
  args: string[],
  signal: AbortSignal,
  env?: NodeJS.ProcessEnv,
): Promise<{ corral: Corral; port: number }> {
  const port = await freePort()
  const corral = startCorral(['--bind', `127.0.0.1:${port}`, ...args, fixture('app-dirty.ts')], env && { env })
  await untilReady(corral.controlSocket as string, signal)
  return { corral, port }
}

describe('dirty pool', () => {
  it('a CPU-bound call does not block the HTTP worker that made it', async ({ signal }) => {
    const { port } = await start(['-w', '1', '--dirty-app', LAB], signal)
    // The dirty worker is ready once a call answers (the call waits for its carrier).
    const first = await call(port, '/call/lab/pid')
    expect(first.body.value).toEqual(expect.any(Number))
    let spinDone = false
    const spin = (await started(port, '/call/lab/spin?arg=3000')).answer.then((a) => {
      spinDone = true
      return a
    })
    // The same (only) HTTP worker answers at once while the dirty worker spins.
    const pid = await fetch(`http://127.0.0.1:${port}/pid`).then((r) => r.text())
    expect(Number(pid)).toBe(first.body.worker)
    expect(spinDone).toBe(false)
    const spun = await spin
    expect(spun.body.value).toBeGreaterThan(0)
  })

  it('values go by structured clone, and the app’s error comes back with its message and stack', async ({ signal }) => {
    const { port } = await start(['-w', '1', '--dirty-app', LAB], signal)
    const arg = encodeURIComponent(JSON.stringify({ a: [1, 'two', { three: null }] }))
    expect((await call(port, `/call/lab/echo?arg=${arg}`)).body.value).toEqual({ a: [1, 'two', { three: null }] })
    const failed = await call(port, `/call/lab/fail?arg=${encodeURIComponent('"boom"')}`)
    expect(failed.body).toMatchObject({ code: 'DIRTY_APP_ERROR', message: 'boom' })
    expect(failed.body.stack).toMatch(/TypeError: boom\n\s+at Lab\.fail/)
    expect((await call(port, '/call/lab/nope')).body.code).toBe('DIRTY_NO_METHOD')
    expect((await call(port, '/call/nobody/pid')).body.code).toBe('DIRTY_NO_WORKER')
  })

  it('a call past --dirty-timeout fails as a timeout and its stuck dirty worker is replaced', async ({ signal }) => {
    const { corral, port } = await start(['-w', '1', '--dirty-app', LAB, '--dirty-timeout', '2'], signal)
    const before = Number((await call(port, '/call/lab/pid')).body.value)
    // Blocks the dirty worker's event loop far past the timeout.
    const stuck = await call(port, '/call/lab/spin?arg=600000')
    expect(stuck.body.code).toBe('DIRTY_TIMEOUT')
    // The next call waits for the replacement, which loaded the app afresh (its own timeout: the pool's 2 s is
    // shorter than a boot on a loaded machine).
    const after = await call(port, '/call/lab/pid?timeout=120')
    expect(after.body).toMatchObject({ value: expect.any(Number) })
    expect(after.body.value).not.toBe(before)
    expect(isAlive(before)).toBe(false)
    expect(corral.log()).toMatch(/DIRTY WORKER TIMEOUT/)
  })

  it('an async call stuck past --dirty-timeout gets its dirty worker replaced too', async ({ signal }) => {
    const { port } = await start(['-w', '1', '--dirty-app', LAB, '--dirty-timeout', '2'], signal)
    const before = Number((await call(port, '/call/lab/pid')).body.value)
    expect((await call(port, '/call/lab/hang?arg=1')).body.code).toBe('DIRTY_TIMEOUT')
    // Its own timeout, longer than the pool's 2 s: the replacement boots under a loaded machine's pace.
    const after = await call(port, '/call/lab/pid?timeout=120')
    expect(after.body.value).not.toBe(before)
  })

  it('a dirty worker that crashes fails its own calls only', async ({ signal }) => {
    const { corral, port } = await start(['-w', '1', '--dirty-app', LAB, '--dirty-workers', '2'], signal)
    await untilDirty(corral, (rows) => rows.filter((r) => r.state === 'ready').length === 2, signal)
    // Least busy first: the wait goes to one dirty worker, the crash to the other.
    const waiting = await started(port, '/call/lab/wait?arg=1500')
    const crashed = await call(port, '/call/lab/crash')
    expect(crashed.body.code).toBe('DIRTY_WORKER_LOST')
    const waited = await waiting.answer
    expect(waited.body.value).toEqual(expect.any(Number))
  })

  it('an app with a count is loaded by that many dirty workers, the others by all', async ({ signal }) => {
    const { corral, port } = await start(
      ['-w', '1', '--dirty-app', `${LAB}:1`, '--dirty-app', OTHER, '--dirty-workers', '3'],
      signal,
    )
    // All three ready: least busy first then spreads three calls over three workers.
    await untilDirty(corral, (rows) => rows.filter((r) => r.state === 'ready').length === 3, signal)
    const others = await Promise.all([1, 2, 3].map(() => call(port, '/call/other/wait?arg=800')))
    const otherPids = new Set(others.map((a) => a.body.value))
    expect(otherPids.size).toBe(3)
    const labs = await Promise.all([1, 2, 3].map(() => call(port, '/call/lab/wait?arg=300')))
    const labPids = new Set(labs.map((a) => a.body.value))
    expect(labPids.size).toBe(1)
    expect(otherPids.has([...labPids][0])).toBe(true)
  })

  it('HUP with calls in flight: they finish on the old generation, new calls go to the new one', async ({ signal }) => {
    const { corral, port } = await start(['-w', '2', '--dirty-app', LAB, '--dirty-workers', '2'], signal)
    const old = new Set([Number((await call(port, '/call/lab/pid')).body.value)])
    const inFlight = await Promise.all([1, 2, 3, 4].map(() => started(port, '/call/lab/wait?arg=2500')))
    corral.signal('SIGHUP')
    // Complete: generation 1 all ready, generation 0 draining.
    await untilDirty(
      corral,
      (rows) =>
        rows.filter((r) => r.generation === 1 && r.state === 'ready').length === 2 &&
        rows.every((r) => r.generation === 1 || r.state === 'stopping'),
      signal,
    )
    const answers = await Promise.all(inFlight.map((c) => c.answer))
    for (const a of answers) expect(a.body.value).toEqual(expect.any(Number))
    for (const a of answers) old.add(Number(a.body.value))
    const fresh = await call(port, '/call/lab/pid')
    expect(fresh.body.value).toEqual(expect.any(Number))
    expect(old.has(Number(fresh.body.value))).toBe(false)
  })

  it('USR2 with calls in flight: they finish on the old master’s dirty worker, which stops after its HTTP workers; the new master calls its own', async ({
    signal,
  }) => {
    const dir = mkdtempSync(join(tmpdir(), 'corral-dirty-upgrade-'))
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }))
    const pidfile = join(dir, 'corral.pid')
    // Four calls at once: with the default concurrency of 1 they would run one after another, 60 s in all,
    // past the HTTP worker's graceful timeout (30 s) whatever the hand-over does.
    const { corral: old, port } = await start(
      ['-w', '1', '-p', pidfile, '--dirty-app', LAB, '--dirty-concurrency', '4'],
      signal,
    )
    const oldDirty = Number((await call(port, '/call/lab/pid')).body.value)
    const inFlight = await Promise.all([1, 2, 3, 4].map(() => started(port, '/call/lab/wait?arg=15000')))
    let settled = 0
    for (const c of inFlight) void c.answer.finally(() => settled++)
    old.signal('SIGUSR2')
    const fresh = await waitFor(
      () => {
        const pid = pidIn(pidfile)
        return pid !== undefined && pid !== old.pid && pid
      },
      { what: 'the new master to be ready' },
    )
    track(fresh)
    expect(settled).toBe(0)
    // The hand-over, while the calls run: the old master stops its workers, then its dirty pool, then itself.
    old.signal('SIGQUIT')
    const answers = await Promise.all(inFlight.map((c) => c.answer))
    expect(answers.map((a) => a.body.value)).toEqual([oldDirty, oldDirty, oldDirty, oldDirty])
    expect((await old.exited).code).toBe(0)
    expect(isAlive(oldDirty)).toBe(false)
    const now = Number((await call(port, '/call/lab/pid')).body.value)
    expect(now).not.toBe(oldDirty)
    expect(isAlive(now)).toBe(true)
    process.kill(fresh, 'SIGTERM')
  })

  it('a caller that goes away: its calls still queued are dropped, so the dirty worker drains at once', async ({
    signal,
  }) => {
    const { corral, port } = await start(['-w', '1', '--dirty-app', LAB, '--dirty-graceful-timeout', '10'], signal)
    const dirtyPid = Number((await call(port, '/call/lab/pid')).body.value)
    const httpWorker = Number(await (await fetch(`http://127.0.0.1:${port}/pid`)).text())
    // Concurrency 1: the first call runs until its signal aborts, the two after it wait in the dirty worker's queue.
    const running = await started(port, '/call/lab/untilAborted?arg=1')
    const queued = await Promise.all([1, 2].map(() => started(port, '/call/lab/wait?arg=600000')))
    process.kill(httpWorker, 'SIGKILL')
    // Each dies with its HTTP worker; all handled at once, so none rejects unheard.
    await Promise.allSettled([running, ...queued].map((c) => c.answer))
    corral.signal('SIGTERM')
    expect((await corral.exited).code).toBe(0)
    await corral.ended()
    // Had the queued calls run, the dirty worker would still be in the first of them when its graceful timeout ends.
    expect(corral.log()).toContain(`Dirty worker exited (pid: ${dirtyPid}, stop)`)
    expect(corral.log()).not.toMatch(/Dirty worker \(pid:\d+\) killed/)
  })

  it('ctl dirty add|remove scale the pool, never below what the apps need; show dirty lists it', async ({ signal }) => {
    const { corral } = await start(['-w', '1', '--dirty-app', `${LAB}:1`, '--dirty-app', OTHER], signal)
    const socket = corral.controlSocket as string
    await untilDirty(corral, (rows) => rows.length === 1 && rows[0]?.state === 'ready', signal)
    await answer(socket, ['dirty', 'add', '2'], 'sent')
    const three = await untilDirty(corral, (rows) => rows.filter((r) => r.state === 'ready').length === 3, signal)
    expect(three.map((r) => [r.slot, r.apps])).toEqual([
      [0, ['lab', 'other']],
      [1, ['other']],
      [2, ['other']],
    ])
    await answer(socket, ['dirty', 'remove', '5'], 'sent')
    const one = await untilDirty(corral, (rows) => rows.length === 1, signal)
    expect(one[0]).toMatchObject({ slot: 0, apps: ['lab', 'other'], state: 'ready' })
    expect(corral.log()).toMatch(/Number of dirty workers: 3 -> 1/)
  })

  it('/metrics counts dirty workers by state and calls by app and outcome, with their durations', async ({
    signal,
  }) => {
    const metricsPort = await freePort()
    const { port } = await start(['-w', '1', '--dirty-app', LAB, '--metrics-bind', `127.0.0.1:${metricsPort}`], signal)
    await call(port, '/call/lab/pid')
    await call(port, `/call/lab/fail?arg=${encodeURIComponent('"boom"')}`)
    await call(port, '/call/lab/untilAborted?arg=1&timeout=1')
    // The dirty worker reports its counts with its next heartbeat.
    const text = await waitFor(
      async () => {
        const t = await fetch(`http://127.0.0.1:${metricsPort}/metrics`).then((r) => r.text())
        return /corral_dirty_calls_total\{app="lab",outcome="timeout"\} 1/.test(t) && t
      },
      { timeoutMs: 30_000, what: 'the dirty call counts' },
    )
    expect(text).toMatch(/corral_dirty_workers\{state="ready"\} 1/)
    expect(text).toMatch(/corral_dirty_calls_total\{app="lab",outcome="ok"\} 1/)
    expect(text).toMatch(/corral_dirty_calls_total\{app="lab",outcome="error"\} 1/)
    expect(text).toMatch(/corral_dirty_call_duration_seconds_count\{app="lab"\} 3/)
  })

  it('the hooks: onDirtyStarting, dirtyPostSpawn and dirtyWorkerExit in the master, dirtyWorkerInit in the dirty worker', async ({
    signal,
  }) => {
    const notes = join(mkdtempSync(join(tmpdir(), 'corral-dirty-hooks-')), 'hooks.log')
    const { corral, port } = await start(
      ['-w', '1', '-c', fixture('dirty-hooks.config.ts'), '--dirty-app', LAB],
      signal,
      { DIRTY_HOOKS_LOG: notes },
    )
    const pid = Number((await call(port, '/call/lab/pid')).body.value)
    // A crash: its exit and its replacement's spawn and init.
    await call(port, '/call/lab/crash')
    await untilDirty(corral, (rows) => rows.length === 1 && rows[0]?.id === 2 && rows[0].state === 'ready', signal)
    const lines = readFileSync(notes, 'utf8').trim().split('\n')
    expect(lines[0]).toBe(`onDirtyStarting ${corral.pid}`)
    expect(lines).toContain(`dirtyPostSpawn 1 ${pid} lab`)
    expect(lines).toContain(`dirtyWorkerInit 1 ${pid} slot 0`)
    expect(lines).toContain(`dirtyWorkerExit 1 ${pid} crash`)
    expect(lines.filter((l) => l.startsWith('dirtyWorkerInit 2 '))).toHaveLength(1)
  })
})
