// Scenarios of the master chart that random sequences reach too rarely to
// pin (found by mutation testing: each case here failed to notice a planted
// change, spec/model-fidelity.md): where an abandoned reload goes back to,
// what a refused boot and a halt report of the worker, the re-exec's command,
// exits while idle, a new master gone after an automatic hand-over, the
// respawn back-off, a quick stop's deadline after a graceful one.
import { describe, expect, test } from 'vitest'
import type { MasterCommand } from '../machines/master.ts'
import { workerState } from '../machines/master-workers.ts'
import { exit, hup, ready, serving, settings, startMaster } from './helpers/master-actor.ts'

describe('the master chart, scenario by scenario', () => {
  test('a reload started after WINCH and abandoned goes back to idle, spawning nothing', () => {
    const m = serving()
    m.send({ type: 'WINCH', fromTerminal: false }, exit(1, 0), exit(2, 0))
    expect(m.snapshot.matches({ active: { running: 'idle' } })).toBe(true)
    m.send(...hup()).did()
    const commands = m.send(exit(3, 4)).did()
    expect(m.snapshot.matches({ active: { running: 'idle' } })).toBe(true)
    expect(commands.filter((c) => c.type === 'spawnWorker')).toEqual([])
  })

  test('a reload from steady after one from idle is abandoned back to steady, which respawns', () => {
    const m = serving()
    m.send({ type: 'WINCH', fromTerminal: false }, exit(1, 0), exit(2, 0), ...hup(), ...ready(3, 4))
    expect(m.snapshot.matches({ active: { running: 'steady' } })).toBe(true)
    m.send(...hup()).did()
    m.send(exit(5, 4))
    expect(m.snapshot.matches({ active: { running: 'steady' } })).toBe(true)
  })

  test('a reload queued during one from idle starts from steady: abandoned, it goes back to steady', () => {
    const m = serving()
    m.send({ type: 'WINCH', fromTerminal: false }, exit(1, 0), exit(2, 0), ...hup(), ...hup())
    // Generation 1 (3, 4) ready: steady, and the queued reload starts generation 2 (5, 6) at once.
    m.send(...ready(3, 4), exit(5, 4))
    expect(m.snapshot.matches({ active: { running: 'steady' } })).toBe(true)
  })

  test('a quick stop after a graceful one keeps the earlier of the two deadlines', () => {
    const m = serving({ settings: settings(2), now: 0 })
    // Graceful: SIGKILL due at 30 s. A quick stop at 29.5 s would be due at 30.5 s: 30 s stands.
    m.send({ type: 'TERM' }, { type: 'TICK', now: 29_500 }, { type: 'INT' }).did()
    const kills = m.send({ type: 'TICK', now: 30_000 }).did()
    expect(kills).toEqual([
      { type: 'killWorker', id: 1 },
      { type: 'killWorker', id: 2 },
    ])
  })

  test('an abandoned reload reports the failed worker and stops the rest of its generation quickly', () => {
    const m = serving()
    m.send(...hup()).did()
    const commands = m.send(exit(3, 4)).did()
    expect(commands).toContainEqual({
      type: 'workerExited',
      id: 3,
      pid: undefined,
      generation: 1,
      code: 4,
      signal: null,
      cause: 'boot-failure',
    })
    expect(commands).toContainEqual({ type: 'stopWorker', id: 4, mode: 'quick' })
  })

  test('the launch: the first worker alone, the others once it is ready, spares once all of them are', () => {
    const m = startMaster({ settings: { ...settings(3), standby: 1 } })
    const spawned = () => m.did().flatMap((c) => (c.type === 'spawnWorker' ? [`${c.id} ${c.role}`] : []))
    expect(spawned()).toEqual(['1 serving'])
    // The first one crashing before it is ready is replaced alone, after the back-off.
    m.send(exit(1, 1), { type: 'TICK', now: 100 })
    expect(spawned()).toEqual(['2 serving'])
    m.send(...ready(2))
    expect(spawned()).toEqual(['3 serving', '4 serving'])
    m.send(...ready(3, 4))
    expect(spawned()).toEqual(['5 spare'])
    expect(m.snapshot.matches({ active: 'running' })).toBe(true)
  })

  test('a HUP whose settings are refused tells the shell so, and nothing else happens', () => {
    const m = serving()
    const problems = ['--certfile: no such file']
    expect(m.send({ type: 'HUP' }, { type: 'SETTINGS_READ', refused: problems }).did()).toEqual([
      { type: 'readSettings' },
      { type: 'reloadRefused', problems },
    ])
    expect(m.snapshot.matches({ active: { running: 'steady' } })).toBe(true)
  })

  test('only the launch spawns one at a time: a running generation that lost every worker respawns them all', () => {
    const m = serving({ settings: settings(3), now: 0 })
    m.send(...ready(3)).did()
    m.send({ type: 'TICK', now: 10_000 }, exit(1, 1), exit(2, 1), exit(3, 1))
    expect(m.did().flatMap((c) => (c.type === 'spawnWorker' ? [c.id] : []))).toEqual([4, 5, 6])
  })

  test('--standby: a spare still loading is not promoted; the empty place gets a new worker', () => {
    const m = serving({ settings: { ...settings(2), standby: 1 }, now: 0 })
    m.send({ type: 'TICK', now: 10_000 }).did()
    expect(m.send(exit(1, 1)).did()).toEqual([
      expect.objectContaining({ type: 'workerExited', id: 1 }),
      expect.objectContaining({ type: 'spawnWorker', id: 4, role: 'serving' }),
    ])
    // Loaded, it waits: the serving places are full.
    expect(m.send(...ready(3)).did()).toEqual([])
  })

  test('a spare shows as standby only while it waits loaded: loading or promoted, it is booting', () => {
    const m = serving({ settings: { ...settings(2), standby: 1 } })
    const states = () => m.snapshot.context.workers.map((w) => `${w.id} ${workerState(w)}`)
    expect(states()).toEqual(['1 running', '2 running', '3 booting'])
    m.send(...ready(3))
    expect(states()).toEqual(['1 running', '2 running', '3 standby'])
    // Worker 1 told to stop leaves an empty place: the spare takes it, and is booting until it accepts.
    m.send({ type: 'KILL_WORKER', id: 1 })
    expect(states()).toEqual(['1 stopping', '2 running', '3 booting'])
    m.send(...ready(3))
    expect(states()).toEqual(['1 stopping', '2 running', '3 running', '4 booting'])
  })

  test('--standby: a serving worker gone, the waiting spare takes its place at once; a new spare follows', () => {
    const m = serving({ settings: { ...settings(2), standby: 1 } })
    m.send(...ready(3)).did() // the spare, loaded and waiting
    expect(m.send(exit(1, null, 'SIGKILL')).did()).toEqual([
      expect.objectContaining({ type: 'workerExited', id: 1, cause: 'crash' }),
      { type: 'promoteSpare', id: 3 },
    ])
    // The spare is serving once it accepts, and only then does a new spare start behind it (after the
    // back-off: worker 1 died young, and a crash storm must not turn into a spawn storm).
    expect(m.send(...ready(3)).did()).toEqual([])
    expect(m.send({ type: 'TICK', now: 100 }).did()).toEqual([
      expect.objectContaining({ type: 'spawnWorker', id: 4, role: 'spare' }),
    ])
    // A reload replaces the spares too: generation 1's spare comes once its serving workers are ready.
    m.send(...ready(4), ...hup()).did()
    const reload = m.send(...ready(5, 6)).did()
    expect(reload).toContainEqual(expect.objectContaining({ type: 'spawnWorker', id: 7, generation: 1, role: 'spare' }))
    expect(reload).toContainEqual({ type: 'stopWorker', id: 4, mode: 'graceful' })
  })

  test('a halt reports the worker that could not boot', () => {
    const m = startMaster()
    const commands = m.send(exit(1, 3)).did()
    expect(commands).toContainEqual({
      type: 'workerExited',
      id: 1,
      pid: undefined,
      generation: 0,
      code: 3,
      signal: null,
      cause: 'boot-failure',
    })
    // The launch spawns the first worker alone: it was the only one, so the master is done at once, with its code.
    expect(commands).toContainEqual({ type: 'exit', code: 3 })
    expect(m.snapshot.status).toBe('done')
  })

  test('every exit of a known worker is reported once, with its generation: a crash, a stop, in idle', () => {
    const m = serving()
    expect(m.send({ type: 'WORKER_EXIT', id: 1, pid: 41, code: 1, signal: null }).did()).toContainEqual({
      type: 'workerExited',
      id: 1,
      pid: 41,
      generation: 0,
      code: 1,
      signal: null,
      cause: 'crash',
    })
    m.send({ type: 'WINCH', fromTerminal: false }).did()
    expect(m.send(exit(2, 0)).did()).toEqual([
      { type: 'workerExited', id: 2, pid: undefined, generation: 0, code: 0, signal: null, cause: 'stop' },
    ])
    // Forgotten: not left as a stopping worker for a SIGKILL at its deadline.
    expect(m.snapshot.context.workers.map((w) => w.id)).not.toContain(2)
    expect(m.send(exit(2, 0)).did()).toEqual([])
  })

  test('USR2: the preExec command, then on its success the re-exec, with the new master counted as starting', () => {
    const m = serving()
    expect(m.send({ type: 'USR2' }).did()).toEqual([{ type: 'preExec' }])
    expect(m.snapshot.context.childMaster).toBe('none')
    expect(m.send({ type: 'PRE_EXEC_DONE' }).did()).toEqual([{ type: 'reexec' }])
    expect(m.snapshot.context.childMaster).toBe('starting')
    expect(m.send({ type: 'PRE_EXEC_FAILED', reason: 'late' }).did()).toEqual([])
  })

  test('a new master that exits after an automatic hand-over began gives the pidfile back', () => {
    const m = serving({ settings: settings(2), upgrade: 'auto' })
    m.send({ type: 'USR2' }, { type: 'PRE_EXEC_DONE' }, { type: 'REEXEC_READY' }).did()
    expect(m.snapshot.matches('draining')).toBe(true)
    expect(m.send({ type: 'REEXEC_EXIT', code: 1, signal: null }).did()).toEqual([{ type: 'restorePidfile' }])
    expect(m.snapshot.context.childMaster).toBe('none')
  })

  test('a worker that dies young is respawned only once its back-off is over; an old one at once', () => {
    const m = serving({ settings: settings(2), now: 1_000 })
    m.send(exit(1, 1))
    expect(m.did().filter((c) => c.type === 'spawnWorker')).toEqual([])
    m.send({ type: 'TICK', now: 1_099 })
    expect(m.did().filter((c) => c.type === 'spawnWorker')).toEqual([])
    m.send({ type: 'TICK', now: 1_100 })
    expect(
      m
        .did()
        .filter((c) => c.type === 'spawnWorker')
        .map((c) => c.type === 'spawnWorker' && c.id),
    ).toEqual([3])
    // Worker 2 has served for 10 s: its death is no crash, its replacement comes at once.
    m.send({ type: 'TICK', now: 11_000 }).did()
    expect(
      m
        .send(exit(2, 1))
        .did()
        .filter((c) => c.type === 'spawnWorker'),
    ).toHaveLength(1)
  })
})

describe('the master clock: ticks with jumps (the suspend guard)', () => {
  // Two workers with 30 s heartbeat timeouts, serving from t = 0.
  const beatsAbort = (m: ReturnType<typeof serving>, ...nows: number[]) =>
    nows.flatMap((now) => m.send({ type: 'TICK', now }).did()).filter((c) => c.type === 'abortWorker')

  test('silence past the timeout, seen in steps shorter than the timeout, aborts both workers', () => {
    const m = serving({ settings: settings(2), now: 0 })
    expect(beatsAbort(m, 10_000, 20_000, 30_000)).toEqual([])
    expect(beatsAbort(m, 30_001)).toEqual([
      { type: 'abortWorker', id: 1 },
      { type: 'abortWorker', id: 2 },
    ])
  })

  test('one jump past the timeout (the master suspended) aborts nobody: heartbeat clocks restart, and say so', () => {
    const m = serving({ settings: settings(2), now: 0 })
    const commands = m.send({ type: 'TICK', now: 60_000 })
    expect(commands.said()).toEqual([
      'warning The master did not run for 60.0 s (suspended or starved): 2 worker(s) get a fresh heartbeat timeout instead of an abort',
    ])
    expect(m.snapshot.context.workers.map((w) => [w.status, w.lastBeat])).toEqual([
      ['running', 60_000],
      ['running', 60_000],
    ])
    // A worker that is really stuck is still caught, one timeout after the pause.
    expect(beatsAbort(m, 70_000, 80_000, 90_000)).toEqual([])
    expect(beatsAbort(m, 90_001)).toHaveLength(2)
  })

  test('a jump of exactly the timeout is no pause; one millisecond more is', () => {
    const m = serving({ settings: settings(2), now: 0 })
    expect(beatsAbort(m, 30_000)).toEqual([])
    expect(m.said()).toEqual([])
    expect(beatsAbort(m, 60_001)).toEqual([])
    expect(m.snapshot.context.workers.every((w) => w.lastBeat === 60_001)).toBe(true)
  })

  test('a stopping worker past its deadline is still SIGKILLed after a jump', () => {
    const m = serving({ settings: settings(2), now: 0 })
    m.send({ type: 'TERM' }).did()
    expect(m.send({ type: 'TICK', now: 600_000 }).did()).toEqual([
      { type: 'killWorker', id: 1 },
      { type: 'killWorker', id: 2 },
    ])
  })
})

describe('why a worker left: one cause, decided by the chart, carried by workerExited', () => {
  const causeOf = (commands: readonly MasterCommand[], id: number) =>
    commands.flatMap((c) => (c.type === 'workerExited' && c.id === id ? [c.cause] : []))

  test('each way out names its own cause', () => {
    const m = serving({ settings: settings(2), now: 0 })
    m.send({ type: 'KILL_WORKER', id: 1 })
    expect(causeOf(m.send(exit(1, 0)).did(), 1)).toEqual(['killed'])
    m.send({ type: 'WORKER_RETIRING', id: 2, cause: 'max-memory', reason: 'max memory: RSS 600 MB > 512 MB' })
    expect(causeOf(m.send(exit(2, 0)).did(), 2)).toEqual(['max-memory'])
    // 3 and 4 replaced them; TTOU stops the oldest, 3.
    m.send(...ready(3, 4), { type: 'TTOU' })
    expect(causeOf(m.send(exit(3, 0)).did(), 3)).toEqual(['scaled-down'])
    // A reload replaces 4 with 5.
    m.send(...hup(), ...ready(5))
    expect(causeOf(m.send(exit(4, 0)).did(), 4)).toEqual(['reload'])
    // Silent past its timeout (in steps shorter than it): aborted, then its SIGKILL exit.
    m.send({ type: 'TICK', now: 20_000 }, { type: 'TICK', now: 40_000 })
    expect(causeOf(m.send(exit(5, null, 'SIGKILL')).did(), 5)).toEqual(['timeout'])
    // Its replacement 6 dies by itself, young: a crash; 7 comes after the back-off, and TERM stops it.
    m.send(...ready(6))
    expect(causeOf(m.send(exit(6, 1)).did(), 6)).toEqual(['crash'])
    m.send({ type: 'TICK', now: 41_000 }, ...ready(7), { type: 'TERM' })
    expect(causeOf(m.send(exit(7, 0)).did(), 7)).toEqual(['stop'])
  })

  test('the first reason stands: a retiring worker caught by a stop still left for max requests', () => {
    const m = serving()
    m.send({ type: 'WORKER_RETIRING', id: 1, cause: 'max-requests', reason: 'max requests: 1000' }, { type: 'INT' })
    expect(causeOf(m.send(exit(1, 0)).did(), 1)).toEqual(['max-requests'])
  })
})
