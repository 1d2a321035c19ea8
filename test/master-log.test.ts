// What the master says (its `log` commands), line by line, in the situations
// that make it speak. These lines are corral's interface to an operator: the
// end-to-end tests and people's log searches wait for them, and a reader of
// the log has nothing else to tell a refused USR2 from a queued reload. The
// machine and model tests check what the master does; this checks that it
// says so, with the numbers and reasons of the event at hand.
import { describe, expect, test } from 'vitest'
import { hup, ready, serving, settings, startMaster } from './helpers/master-actor.ts'

describe('what the master says', () => {
  test('scaling: TTIN, TTOU, worker remove, each down to the minimum of one', () => {
    const m = serving()
    expect(m.send({ type: 'TTIN' }).said()).toEqual(['info Number of workers: 2 -> 3'])
    expect(m.send({ type: 'TTOU' }).said()).toEqual(['info Number of workers: 3 -> 2'])
    expect(m.send({ type: 'REMOVE_WORKERS', count: 5 }).said()).toEqual(['info Number of workers: 2 -> 1'])
    expect(m.send({ type: 'TTOU' }).said()).toEqual(['info TTOU ignored: one worker is the minimum'])
    expect(m.send({ type: 'REMOVE_WORKERS', count: 1 }).said()).toEqual([
      'info worker remove ignored: one worker is the minimum',
    ])
  })

  test('a worker stopped by ctl, one retiring, one dying young again and again', () => {
    const m = serving()
    expect(m.send({ type: 'KILL_WORKER', id: 1 }).said()).toEqual([
      'info Worker 1 stopped by corral ctl; starting its replacement',
    ])
    expect(
      m.send({ type: 'WORKER_RETIRING', id: 2, cause: 'max-requests', reason: 'max requests 1000' }).said(),
    ).toEqual(['info Worker 2 is retiring (max requests 1000); starting its replacement'])
    // Worker 3 replaced 1; it dies within its first seconds, twice in a row (its replacement is 5).
    m.send({ type: 'WORKER_READY', id: 3 }).said()
    expect(m.send({ type: 'WORKER_EXIT', id: 3, code: 1, signal: null }).said()).toEqual([
      'warning Worker 3 died 1 time(s) in a row soon after start; respawning in 100 ms',
    ])
    m.send({ type: 'TICK', now: 100 }, { type: 'WORKER_READY', id: 5 }).said()
    expect(m.send({ type: 'WORKER_EXIT', id: 5, code: 1, signal: null }).said()).toEqual([
      'warning Worker 5 died 2 time(s) in a row soon after start; respawning in 200 ms',
    ])
  })

  test('nothing said of what did not happen: an unknown worker killed, an old worker dying', () => {
    const m = serving()
    expect(m.send({ type: 'KILL_WORKER', id: 99 }).said()).toEqual([])
    // Worker 2 has served for 10 s: its death is no crash, nothing to warn of.
    expect(m.send({ type: 'TICK', now: 10_000 }, { type: 'WORKER_EXIT', id: 2, code: 1, signal: null }).said()).toEqual(
      [],
    )
  })

  test('a worker already told to stop that retires is not news (no replacement is coming)', () => {
    const m = serving()
    m.send({ type: 'WINCH', fromTerminal: false }).said()
    expect(m.send({ type: 'WORKER_RETIRING', id: 1, cause: 'max-memory', reason: 'max memory' }).said()).toEqual([])
    const n = serving()
    n.send({ type: 'WORKER_RETIRING', id: 1, cause: 'max-memory', reason: 'max memory' }).said()
    expect(n.send({ type: 'WORKER_RETIRING', id: 1, cause: 'max-memory', reason: 'max memory' }).said()).toEqual([])
  })

  test('reloads: started, queued once, completed; a new size from the re-read settings', () => {
    const m = serving()
    expect(m.send(...hup(settings(3))).said()).toEqual([
      'info Reloading: starting worker generation 1',
      'info Number of workers: 2 -> 3 (from the re-read settings)',
    ])
    expect(m.send(...hup()).said()).toEqual(['info Reload queued until the one in flight completes'])
    expect(m.send(...hup()).said()).toEqual(['info Reload already queued'])
    // Generation 1 (ids 3, 4, 5) ready: complete, and the queued reload starts at once.
    expect(m.send(...ready(3, 4, 5)).said()).toEqual([
      'info Reload complete: generation 1 is serving',
      'info Reloading: starting worker generation 2',
    ])
  })

  test('a HUP whose settings are refused names each problem; an answer nobody asked for says nothing', () => {
    const refused = (...problems: string[]) => ({ type: 'SETTINGS_READ' as const, refused: problems })
    const m = serving()
    expect(
      m.send({ type: 'HUP' }, refused('workers: expected a positive integer, got 0', '--certfile: gone')).said(),
    ).toEqual([
      'error Reload not started: workers: expected a positive integer, got 0',
      'error Reload not started: --certfile: gone',
    ])
    expect(m.send(refused('--certfile: gone')).said()).toEqual([])
    expect(m.snapshot.context.settingsReads).toBe(0)
    // The same while booting, and after WINCH.
    const b = startMaster()
    expect(b.send({ type: 'HUP' }, refused('--certfile: gone'), refused('again')).said()).toEqual([
      'error Reload not started: --certfile: gone',
    ])
    const w = serving()
    w.send({ type: 'WINCH', fromTerminal: false }).said()
    expect(w.send({ type: 'HUP' }, refused('--certfile: gone'), refused('again')).said()).toEqual([
      'error Reload not started: --certfile: gone',
    ])
  })

  test('a reload whose new generation cannot boot is abandoned, naming both generations and the code', () => {
    const m = serving()
    m.send(...hup()).said()
    expect(m.send({ type: 'WORKER_EXIT', id: 3, code: 4, signal: null }).said()).toEqual([
      'error Reload abandoned: a worker of generation 1 exited with code 4 while booting; generation 0 keeps serving, with its settings',
    ])
  })

  test('a first generation that cannot boot halts the master, saying whether the app or the worker failed', () => {
    expect(startMaster().send({ type: 'WORKER_EXIT', id: 1, code: 4, signal: null }).said()).toEqual([
      'critical App failed to load: worker 1 exited with code 4; shutting down',
    ])
    // The launch's first worker is the only one: worker 1 again.
    expect(startMaster().send({ type: 'WORKER_EXIT', id: 1, code: 3, signal: null }).said()).toEqual([
      'critical Worker failed to boot: worker 1 exited with code 3; shutting down',
    ])
  })

  test('USR2: refused as PID 1, during a reload, with a new master already there; preExec and re-exec failures', () => {
    const m = serving()
    expect(m.send({ type: 'USR2', refusal: 'corral is PID 1' }).said()).toEqual([
      'warning USR2 refused: corral is PID 1',
    ])
    m.send(...hup()).said()
    expect(m.send({ type: 'USR2' }).said()).toEqual([
      'warning USR2 refused: a reload or re-exec is in flight, or the workers are stopped (WINCH)',
    ])
    m.send(...ready(3, 4)).said()

    m.send({ type: 'USR2' })
    expect(m.send({ type: 'PRE_EXEC_FAILED', reason: 'not today' }).said()).toEqual([
      'error Re-exec abandoned: the preExec hook failed (not today); this master keeps serving',
    ])
    m.send({ type: 'USR2' }, { type: 'PRE_EXEC_DONE' })
    expect(m.send({ type: 'REEXEC_FAILED', reason: 'spawn failed' }).said()).toEqual([
      'error Re-exec failed: spawn failed; this master keeps serving',
    ])
    m.send({ type: 'USR2' }, { type: 'PRE_EXEC_DONE' })
    expect(m.send({ type: 'REEXEC_EXIT', code: 1, signal: null }).said()).toEqual([
      'error Re-exec failed: the new master exited with code 1 before it was ready; this master keeps serving',
    ])
    m.send({ type: 'USR2' }, { type: 'PRE_EXEC_DONE' })
    expect(m.send({ type: 'REEXEC_EXIT', code: null, signal: 'SIGKILL' }).said()).toEqual([
      'error Re-exec failed: the new master exited on SIGKILL before it was ready; this master keeps serving',
    ])

    m.send({ type: 'USR2' }, { type: 'PRE_EXEC_DONE' })
    expect(m.send({ type: 'REEXEC_READY' }).said()).toEqual([
      'info New master is ready; both serve now. Finish with WINCH then QUIT to this master, or roll back with QUIT to the new one',
    ])
    expect(m.send({ type: 'USR2' }).said()).toEqual([
      'warning USR2 refused: a new master is already running; QUIT one of the two first',
    ])
    expect(m.send({ type: 'REEXEC_EXIT', code: 0, signal: null }).said()).toEqual([
      'warning The new master exited (code 0); this master is in charge again',
    ])
    m.send({ type: 'USR2' }, { type: 'PRE_EXEC_DONE' }, { type: 'REEXEC_READY' }).said()
    expect(m.send({ type: 'REEXEC_EXIT', code: null, signal: 'SIGTERM' }).said()).toEqual([
      'warning The new master exited (SIGTERM); this master is in charge again',
    ])
  })

  test('--upgrade auto hands over by itself; QUIT meanwhile says it is already doing so', () => {
    const m = serving({ settings: settings(2), upgrade: 'auto' })
    m.send({ type: 'USR2' }, { type: 'PRE_EXEC_DONE' }).said()
    expect(m.send({ type: 'REEXEC_READY' }).said()).toEqual(['info New master is ready; handing over (--upgrade auto)'])
    expect(m.send({ type: 'QUIT' }).said()).toEqual(['info QUIT: already handing over to the new master'])
    expect(m.send({ type: 'REEXEC_EXIT', code: 1, signal: null }).said()).toEqual([
      'warning The new master exited (code 1); this master is in charge again',
    ])
  })

  test('WINCH: ignored from a terminal and during a reload; otherwise it stops the workers', () => {
    const m = serving()
    expect(m.send({ type: 'WINCH', fromTerminal: true }).said()).toEqual([
      'info WINCH ignored: the master runs in the foreground of a terminal, which sends WINCH on every resize (run it with -D, under a service manager, or send WINCH through corral ctl)',
    ])
    m.send(...hup()).said()
    expect(m.send({ type: 'WINCH', fromTerminal: false }).said()).toEqual([
      'info WINCH ignored: only a running master with no reload in flight stops its workers',
    ])
    m.send(...ready(3, 4)).said()
    expect(m.send({ type: 'WINCH', fromTerminal: false }).said()).toEqual([
      'info WINCH: stopping all workers gracefully; HUP starts them again',
    ])
  })

  test('shutting down (quick: a second stop signal made it so), every steering event is ignored by name', () => {
    const m = serving()
    m.send({ type: 'TERM' }, { type: 'INT' }).said()
    for (const type of ['HUP', 'QUIT', 'TERM', 'TTIN', 'TTOU', 'USR2'] as const)
      expect(m.send({ type }).said(), type).toEqual([`info ${type} ignored while shutting down`])
    expect(m.send({ type: 'KILL_WORKER', id: 1 }).said()).toEqual(['info KILL_WORKER ignored while shutting down'])
  })
})

describe('a re-exec that fails after a stop began', () => {
  test('says so, and puts the pidfile back for the rest of the drain', () => {
    const m = serving()
    m.send({ type: 'USR2' }, { type: 'PRE_EXEC_DONE' }, { type: 'QUIT' }).said()
    m.send({ type: 'REEXEC_FAILED', reason: 'spawn ENOENT' })
    expect(m.said()).toEqual(['error Re-exec failed: spawn ENOENT; this master is stopping'])
    expect(m.snapshot.context.childMaster).toBe('none')
  })
})
