// The master (gunicorn's arbiter) as a statechart. Pure: it owns no timers and
// does no I/O. Everything that happens reaches it as an event; everything it
// wants done leaves it as an emitted command (see MasterCommand), which the
// shell in src/master/main.ts carries out.
import { assertEvent, enqueueActions, setup } from 'xstate'
import { APP_LOAD_ERROR, RUNTIME_ERROR } from './exit-codes.ts'
import type { RetireCause } from './worker.ts'
import {
  abandonGeneration,
  converge,
  forget,
  heartbeat,
  initialContext,
  isBootFailure,
  isFatalBootFailure,
  markReady,
  readyCount,
  removeWorker,
  retireOldGenerations,
  retiring,
  setTarget,
  startGeneration,
  stopEverything,
  stopOne,
  tick,
  type MasterCommand,
  type MasterContext,
  type MasterInput,
  type MasterSettings,
  type Step,
} from './master-workers.ts'

/** The signals of the contract (spec/signals.md), gunicorn's list: each is an event of its own. */
export const SIGNALS = ['HUP', 'QUIT', 'TERM', 'INT', 'TTIN', 'TTOU', 'USR1', 'USR2', 'WINCH'] as const
export type Signal = (typeof SIGNALS)[number]

export type MasterEvent<S extends MasterSettings = MasterSettings> =
  /**
   * A reload is asked for (SIGHUP, `corral ctl reload`, a changed file with
   * --reload). The chart asks the shell to read the settings (readSettings)
   * and goes on: the read happens beside the event stream, so a TERM sent
   * meanwhile is not held up by a slow config file.
   */
  | { type: 'HUP' }
  /**
   * The shell's answer to readSettings: `settings` re-read for the reload
   * this HUP starts (or queues); undefined keeps those in force (no sources
   * to read). `refused`: the problems with the sources (invalid, or naming
   * what the system does not have, as a missing --certfile): no reload starts.
   */
  | { type: 'SETTINGS_READ'; settings?: S | undefined; refused?: readonly string[] | undefined }
  | { type: 'QUIT' }
  | { type: 'TERM' }
  | { type: 'INT' }
  | { type: 'TTIN' }
  | { type: 'TTOU' }
  | { type: 'USR1' }
  /** `refusal`: why the shell cannot re-exec at all (it is PID 1); the chart refuses before entering `reexecing`. */
  | { type: 'USR2'; refusal?: string | undefined }
  /**
   * `fromTerminal`: a terminal's resize could have sent it (the shell's view:
   * the master is in the foreground process group of its controlling
   * terminal, and the signal did not come through `corral ctl`).
   */
  | { type: 'WINCH'; fromTerminal: boolean }
  | { type: 'WORKER_READY'; id: number }
  /** `corral ctl worker remove N`: N workers fewer (never below one), in one step. No signal does this. */
  | { type: 'REMOVE_WORKERS'; count: number }
  /** `corral ctl worker kill PID`: that worker stops gracefully and is replaced. No signal does this. */
  | { type: 'KILL_WORKER'; id: number }
  /** A worker process exited (gunicorn's CHLD). */
  | { type: 'WORKER_EXIT'; id: number; pid?: number | undefined; code: number | null; signal: string | null }
  | { type: 'HEARTBEAT'; id: number }
  /** The worker drains and exits by itself (max requests, max memory): not a crash. */
  | { type: 'WORKER_RETIRING'; id: number; cause: RetireCause; reason: string }
  | { type: 'TICK'; now: number }
  /** USR2: the preExec hook (if any) returned; the new master can be started. */
  | { type: 'PRE_EXEC_DONE' }
  /** USR2: the preExec hook threw or rejected: the re-exec is abandoned before anything changed. */
  | { type: 'PRE_EXEC_FAILED'; reason: string }
  /** USR2: the new master could not be started at all (refused, spawn failed). */
  | { type: 'REEXEC_FAILED'; reason: string }
  /** USR2: the new master reports that its workers are serving. */
  | { type: 'REEXEC_READY' }
  /** USR2: the new master exited (before or after it was ready). */
  | { type: 'REEXEC_EXIT'; code: number | null; signal: string | null }

const log = (level: Extract<MasterCommand, { type: 'log' }>['level'], message: string): MasterCommand => ({
  type: 'log',
  level,
  message,
})

export const masterMachine = setup({
  types: {
    context: {} as MasterContext,
    events: {} as MasterEvent,
    emitted: {} as MasterCommand,
    input: {} as MasterInput,
  },
  actions: {
    // Apply a pure step: the new context, then its commands, in order.
    converge: enqueueActions(({ context, enqueue }) => apply(enqueue, converge(context))),
    markReady: enqueueActions(({ context, event, enqueue }) => {
      assertEvent(event, 'WORKER_READY')
      enqueue.assign(markReady(context, event.id))
    }),
    launched: enqueueActions(({ enqueue }) => enqueue.assign({ launching: false })),
    heartbeat: enqueueActions(({ context, event, enqueue }) => {
      assertEvent(event, 'HEARTBEAT')
      enqueue.assign(heartbeat(context, event.id))
    }),
    retiring: enqueueActions(({ context, event, enqueue }) => {
      assertEvent(event, 'WORKER_RETIRING')
      const next = retiring(context, event.id, event.cause)
      // A worker already told to stop (or unknown) changes nothing and is not news.
      if (next === context) return
      enqueue.emit(log('info', `Worker ${event.id} is retiring (${event.reason}); starting its replacement`))
      enqueue.assign(next)
    }),
    forget: enqueueActions(({ context, event, enqueue }) => {
      assertEvent(event, 'WORKER_EXIT')
      apply(enqueue, forget(context, event))
    }),
    tick: enqueueActions(({ context, event, enqueue }) => {
      assertEvent(event, 'TICK')
      apply(enqueue, tick(context, event.now))
    }),
    ttin: enqueueActions(({ context, enqueue }) => {
      enqueue.emit(log('info', `Number of workers: ${context.target} -> ${context.target + 1}`))
      apply(enqueue, setTarget(context, context.target + 1))
    }),
    ttou: enqueueActions(({ context, enqueue }) => {
      if (context.target <= 1) {
        enqueue.emit(log('info', 'TTOU ignored: one worker is the minimum'))
        return
      }
      enqueue.emit(log('info', `Number of workers: ${context.target} -> ${context.target - 1}`))
      apply(enqueue, setTarget(context, context.target - 1))
    }),
    removeWorkers: enqueueActions(({ context, event, enqueue }) => {
      assertEvent(event, 'REMOVE_WORKERS')
      const target = Math.max(1, context.target - event.count)
      if (target === context.target) {
        enqueue.emit(log('info', 'worker remove ignored: one worker is the minimum'))
        return
      }
      enqueue.emit(log('info', `Number of workers: ${context.target} -> ${target}`))
      apply(enqueue, setTarget(context, target))
    }),
    stopOne: enqueueActions(({ context, event, enqueue }) => {
      assertEvent(event, 'KILL_WORKER')
      const step = stopOne(context, event.id)
      if (step.commands.length === 0) return
      enqueue.emit(log('info', `Worker ${event.id} stopped by corral ctl; starting its replacement`))
      apply(enqueue, step)
    }),
    reopenLogs: enqueueActions(({ enqueue }) => enqueue.emit({ type: 'reopenLogs' })),
    readSettings: enqueueActions(({ context, enqueue }) => {
      enqueue.assign({ settingsReads: context.settingsReads + 1 })
      enqueue.emit({ type: 'readSettings' })
    }),
    // The settings a HUP re-read are for the reload it starts, now or once the one in flight is over.
    takeSettings: enqueueActions(({ context, event, enqueue }) => {
      assertEvent(event, 'SETTINGS_READ')
      enqueue.assign({ settingsReads: context.settingsReads - 1 })
      if (event.settings) enqueue.assign({ nextSettings: event.settings })
    }),
    // The settings a HUP read cannot be used: its reload does not start, and the one in force or queued goes on.
    refuseReload: enqueueActions(({ context, event, enqueue }) => {
      assertEvent(event, 'SETTINGS_READ')
      const problems = event.refused ?? []
      enqueue.assign({ settingsReads: context.settingsReads - 1 })
      for (const problem of problems) enqueue.emit(log('error', `Reload not started: ${problem}`))
      enqueue.emit({ type: 'reloadRefused', problems })
    }),
    // Stopping: the reload a HUP asked for will not happen.
    dropSettings: enqueueActions(({ context, enqueue }) => {
      enqueue.assign({ settingsReads: context.settingsReads - 1 })
      enqueue.emit(log('info', 'Reload not started: shutting down'))
    }),
    queueReload: enqueueActions(({ context, enqueue }) => {
      enqueue.emit(
        log('info', context.reloadQueued ? 'Reload already queued' : 'Reload queued until the one in flight completes'),
      )
      enqueue.assign({ reloadQueued: true })
    }),
    reloadFromSteady: enqueueActions(({ enqueue }) => enqueue.assign({ reloadFromIdle: false })),
    reloadFromIdle: enqueueActions(({ enqueue }) => enqueue.assign({ reloadFromIdle: true })),
    startGeneration: enqueueActions(({ context, enqueue }) => {
      const started = startGeneration(context)
      const { target, generation } = started.context
      enqueue.emit(log('info', `Reloading: starting worker generation ${generation}`))
      if (target !== context.target)
        enqueue.emit(log('info', `Number of workers: ${context.target} -> ${target} (from the re-read settings)`))
      apply(enqueue, started)
      apply(enqueue, converge(started.context))
    }),
    retireOldGenerations: enqueueActions(({ context, enqueue }) => {
      enqueue.emit(log('info', `Reload complete: generation ${context.generation} is serving`))
      apply(enqueue, retireOldGenerations(context))
    }),
    abandonGeneration: enqueueActions(({ context, event, enqueue }) => {
      assertEvent(event, 'WORKER_EXIT')
      enqueue.emit(
        log(
          'error',
          `Reload abandoned: a worker of generation ${context.generation} exited with code ${event.code} while booting; generation ${context.previousGeneration} keeps serving, with its settings`,
        ),
      )
      // forget() would count the failed worker as a crash; it is a refusal.
      const removed = removeWorker(context, event)
      apply(enqueue, removed)
      apply(enqueue, abandonGeneration(removed.context))
    }),
    halt: enqueueActions(({ context, event, enqueue }) => {
      assertEvent(event, 'WORKER_EXIT')
      const { id, code } = event
      const why = code === APP_LOAD_ERROR ? 'App failed to load' : 'Worker failed to boot'
      enqueue.emit(log('critical', `${why}: worker ${id} exited with code ${code}; shutting down`))
      const removed = removeWorker(context, event)
      apply(enqueue, removed)
      enqueue.assign({ exitCode: code ?? RUNTIME_ERROR })
    }),
    stopGraceful: enqueueActions(({ context, enqueue }) => apply(enqueue, stopEverything(context, 'graceful'))),
    stopQuick: enqueueActions(({ context, enqueue }) => apply(enqueue, stopEverything(context, 'quick'))),
    announceReady: enqueueActions(({ context, enqueue }) =>
      enqueue.emit({ type: 'ready', workers: readyCount(context) }),
    ),
    runPreExec: enqueueActions(({ enqueue }) => enqueue.emit({ type: 'preExec' })),
    preExecFailed: enqueueActions(({ event, enqueue }) => {
      assertEvent(event, 'PRE_EXEC_FAILED')
      enqueue.emit(
        log('error', `Re-exec abandoned: the preExec hook failed (${event.reason}); this master keeps serving`),
      )
    }),
    reexec: enqueueActions(({ enqueue }) => {
      enqueue.assign({ childMaster: 'starting' })
      enqueue.emit({ type: 'reexec' })
    }),
    refuseReexec: enqueueActions(({ context, event, enqueue }) => {
      assertEvent(event, 'USR2')
      enqueue.emit(
        log(
          'warning',
          event.refusal
            ? `USR2 refused: ${event.refusal}`
            : context.childMaster !== 'none'
              ? 'USR2 refused: a new master is already running; QUIT one of the two first'
              : 'USR2 refused: a reload or re-exec is in flight, or the workers are stopped (WINCH)',
        ),
      )
    }),
    // Rollback: the new master never got ready. Nothing here changed but the
    // pidfile's name, and that is put back.
    reexecFailed: enqueueActions(({ event, enqueue }) => {
      assertEvent(event, ['REEXEC_FAILED', 'REEXEC_EXIT'])
      const why =
        event.type === 'REEXEC_FAILED'
          ? event.reason
          : `the new master exited ${event.signal ? `on ${event.signal}` : `with code ${event.code}`} before it was ready`
      enqueue.assign({ childMaster: 'none' })
      enqueue.emit(log('error', `Re-exec failed: ${why}; this master keeps serving`))
      enqueue.emit({ type: 'restorePidfile' })
    }),
    childMasterReady: enqueueActions(({ context, enqueue }) => {
      enqueue.assign({ childMaster: 'ready' })
      enqueue.emit(
        log(
          'info',
          context.upgrade === 'auto'
            ? 'New master is ready; handing over (--upgrade auto)'
            : 'New master is ready; both serve now. Finish with WINCH then QUIT to this master, or roll back with QUIT to the new one',
        ),
      )
    }),
    // A stop came between the re-exec and its failure (Node reports a spawn
    // error after the fact): the new master never ran; the pidfile's name is
    // put back for the rest of the drain.
    reexecFailedWhileStopping: enqueueActions(({ event, enqueue }) => {
      assertEvent(event, 'REEXEC_FAILED')
      enqueue.assign({ childMaster: 'none' })
      enqueue.emit(log('error', `Re-exec failed: ${event.reason}; this master is stopping`))
      enqueue.emit({ type: 'restorePidfile' })
    }),
    // The new master is gone after it was ready: this one is the master again.
    childMasterGone: enqueueActions(({ event, enqueue }) => {
      assertEvent(event, 'REEXEC_EXIT')
      enqueue.assign({ childMaster: 'none' })
      enqueue.emit(
        log(
          'warning',
          `The new master exited (${event.signal ?? `code ${event.code}`}); this master is in charge again`,
        ),
      )
      enqueue.emit({ type: 'restorePidfile' })
    }),
    ignoreWinch: enqueueActions(({ event, enqueue }) => {
      assertEvent(event, 'WINCH')
      enqueue.emit(
        log(
          'info',
          event.fromTerminal
            ? 'WINCH ignored: the master runs in the foreground of a terminal, which sends WINCH on every resize (run it with -D, under a service manager, or send WINCH through corral ctl)'
            : 'WINCH ignored: only a running master with no reload in flight stops its workers',
        ),
      )
    }),
    stopForWinch: enqueueActions(({ context, enqueue }) => {
      enqueue.emit(log('info', 'WINCH: stopping all workers gracefully; HUP starts them again'))
      apply(enqueue, stopEverything(context, 'graceful'))
    }),
    ignoreInDrain: enqueueActions(({ event, enqueue }) => {
      enqueue.emit(log('info', `${event.type} ignored while shutting down`))
    }),
    alreadyHandingOver: enqueueActions(({ enqueue }) =>
      enqueue.emit(log('info', 'QUIT: already handing over to the new master')),
    ),
    exit: enqueueActions(({ context, enqueue }) => enqueue.emit({ type: 'exit', code: context.exitCode })),
  },
  guards: {
    isFatalBootFailure: ({ context, event }) =>
      event.type === 'WORKER_EXIT' && isFatalBootFailure(context, event.id, event.code),
    // During a reload a refusal to boot from the new generation undoes the
    // reload instead of halting: the old generation is still serving.
    isNewGenerationBootFailure: ({ context, event }) => isNewGenerationBootFailure(context, event),
    // Abandoned, a reload started after WINCH goes back to idle: this master was not serving.
    isIdleReloadBootFailure: ({ context, event }) =>
      context.reloadFromIdle && isNewGenerationBootFailure(context, event),
    allReady: ({ context }) => readyCount(context) >= context.target,
    reloadQueued: ({ context }) => context.reloadQueued,
    noWorkersLeft: ({ context }) => context.workers.length === 0,
    notFromTerminal: ({ event }) => event.type === 'WINCH' && !event.fromTerminal,
    noChildMaster: ({ context }) => context.childMaster === 'none',
    isReexecRefused: ({ event }) => event.type === 'USR2' && event.refusal !== undefined,
    isAutoUpgrade: ({ context }) => context.upgrade === 'auto',
    isHandingOver: ({ context }) => context.childMaster === 'ready',
    // Only an answer to a readSettings the chart sent counts.
    settingsOwed: ({ context }) => context.settingsReads > 0,
    settingsRefused: ({ context, event }) =>
      context.settingsReads > 0 && event.type === 'SETTINGS_READ' && event.refused !== undefined,
  },
}).createMachine({
  id: 'master',
  context: ({ input }) => initialContext(input),
  initial: 'active',
  states: {
    // The master manages workers: spawns, respawns, scales, watches heartbeats.
    active: {
      initial: 'booting',
      on: {
        HUP: { actions: 'readSettings' },
        SETTINGS_READ: [
          { guard: 'settingsRefused', actions: 'refuseReload' },
          { guard: 'settingsOwed', actions: ['takeSettings', 'queueReload'] },
        ],
        QUIT: { target: 'draining.graceful' },
        TERM: { target: 'draining.graceful' },
        INT: { target: 'draining.quick' },
        TTIN: { actions: ['ttin', 'converge'] },
        TTOU: { actions: ['ttou', 'converge'] },
        REMOVE_WORKERS: { actions: ['removeWorkers', 'converge'] },
        KILL_WORKER: { actions: ['stopOne', 'converge'] },
        USR1: { actions: 'reopenLogs' },
        USR2: { actions: 'refuseReexec' },
        WINCH: { actions: 'ignoreWinch' },
        WORKER_EXIT: [
          { guard: 'isFatalBootFailure', target: 'draining.quick', actions: 'halt' },
          { actions: ['forget', 'converge'] },
        ],
        // A ready worker may open the way for others: the rest of the launch, or the spares.
        WORKER_READY: { actions: ['markReady', 'converge'] },
        HEARTBEAT: { actions: 'heartbeat' },
        WORKER_RETIRING: { actions: ['retiring', 'converge'] },
        TICK: { actions: ['tick', 'converge'] },
        REEXEC_EXIT: { actions: 'childMasterGone' },
      },
      states: {
        // The first generation is starting; serving begins with its first
        // worker, "ready" is announced once all of them are up. The first
        // worker is spawned alone and the others once it is ready
        // (`launching`): it has the machine to itself while it starts.
        booting: {
          entry: 'converge',
          exit: 'launched',
          always: { guard: 'allReady', target: 'running', actions: 'announceReady' },
        },
        running: {
          initial: 'steady',
          states: {
            // Tags say what the rest of corral reads off a state: `ready`
            // (serving, not about to stop: /readyz, ctl's ready) and `draining`.
            steady: {
              tags: ['ready'],
              always: { guard: 'reloadQueued', target: 'reloading', actions: 'reloadFromSteady' },
              on: {
                SETTINGS_READ: [
                  { guard: 'settingsRefused', actions: 'refuseReload' },
                  { guard: 'settingsOwed', target: 'reloading', actions: ['takeSettings', 'reloadFromSteady'] },
                ],
                USR2: [
                  { guard: 'isReexecRefused', actions: 'refuseReexec' },
                  { guard: 'noChildMaster', target: '#master.active.reexecing' },
                ],
                WINCH: { guard: 'notFromTerminal', target: 'idle' },
              },
            },
            // WINCH (not from a terminal): every worker stops gracefully and the
            // master stays, holding the listeners, spawning nothing, until a
            // HUP starts a new generation (the manual rollback of an upgrade)
            // or a stop signal ends it (the manual finish).
            idle: {
              entry: 'stopForWinch',
              on: {
                SETTINGS_READ: [
                  { guard: 'settingsRefused', actions: 'refuseReload' },
                  { guard: 'settingsOwed', target: 'reloading', actions: ['takeSettings', 'reloadFromIdle'] },
                ],
                // The target changes; workers come with the next HUP.
                TTIN: { actions: 'ttin' },
                TTOU: { actions: 'ttou' },
                REMOVE_WORKERS: { actions: 'removeWorkers' },
                KILL_WORKER: { actions: 'stopOne' },
                WORKER_READY: { actions: 'markReady' },
                WORKER_EXIT: { actions: 'forget' },
                WORKER_RETIRING: { actions: 'retiring' },
                TICK: { actions: 'tick' },
              },
            },
            // HUP: a new generation boots beside the old one, which stops
            // gracefully once the new one is fully ready. One at a time: a
            // HUP meanwhile is queued (queueReload, on `active`).
            reloading: {
              tags: ['ready'],
              entry: 'startGeneration',
              always: { guard: 'allReady', target: 'steady', actions: 'retireOldGenerations' },
              on: {
                // Any other exit bubbles up to `active`.
                WORKER_EXIT: [
                  { guard: 'isIdleReloadBootFailure', target: 'idle', actions: 'abandonGeneration' },
                  { guard: 'isNewGenerationBootFailure', target: 'steady', actions: ['abandonGeneration', 'converge'] },
                ],
              },
            },
          },
        },
        // USR2. This master serves as before throughout.
        reexecing: {
          tags: ['ready'],
          initial: 'preExec',
          states: {
            // The preExec hook runs in the shell, which reports how it went:
            // one that fails abandons the re-exec while nothing has changed
            // yet. Without a hook the shell reports done at once.
            preExec: {
              entry: 'runPreExec',
              on: {
                PRE_EXEC_DONE: { target: 'starting' },
                PRE_EXEC_FAILED: { target: '#master.active.running', actions: 'preExecFailed' },
              },
            },
            // A new master is starting as this one's child, with the
            // listeners. If it dies before it is ready, that is the rollback:
            // the pidfile's name is put back and nothing else has changed.
            starting: {
              entry: 'reexec',
              on: {
                REEXEC_FAILED: { target: '#master.active.running', actions: 'reexecFailed' },
                REEXEC_EXIT: { target: '#master.active.running', actions: 'reexecFailed' },
                REEXEC_READY: [
                  { guard: 'isAutoUpgrade', target: '#master.draining.graceful', actions: 'childMasterReady' },
                  { target: '#master.active.running', actions: 'childMasterReady' },
                ],
              },
            },
          },
        },
      },
    },
    // Stopping: every worker is told to stop; stragglers are SIGKILLed at
    // their deadline (tick). A second stop signal turns graceful into quick.
    draining: {
      tags: ['draining'],
      initial: 'graceful',
      always: { guard: 'noWorkersLeft', target: 'dead' },
      on: {
        USR1: { actions: 'reopenLogs' },
        HUP: { actions: 'ignoreInDrain' },
        SETTINGS_READ: { guard: 'settingsOwed', actions: 'dropSettings' },
        QUIT: { actions: 'ignoreInDrain' },
        TERM: { actions: 'ignoreInDrain' },
        INT: { actions: 'ignoreInDrain' },
        TTIN: { actions: 'ignoreInDrain' },
        TTOU: { actions: 'ignoreInDrain' },
        REMOVE_WORKERS: { actions: 'ignoreInDrain' },
        KILL_WORKER: { actions: 'ignoreInDrain' },
        USR2: { actions: 'ignoreInDrain' },
        WINCH: { actions: 'ignoreInDrain' },
        WORKER_EXIT: { actions: 'forget' },
        HEARTBEAT: { actions: 'heartbeat' },
        WORKER_RETIRING: { actions: 'retiring' },
        TICK: { actions: 'tick' },
        REEXEC_EXIT: { actions: 'childMasterGone' },
        REEXEC_FAILED: { actions: 'reexecFailedWhileStopping' },
      },
      states: {
        graceful: {
          entry: 'stopGraceful',
          on: {
            // Handing over to a new master, QUIT is the operator's (or
            // `corral upgrade`'s) finishing step, already under way.
            QUIT: [{ guard: 'isHandingOver', actions: 'alreadyHandingOver' }, { target: 'quick' }],
            TERM: { target: 'quick' },
            INT: { target: 'quick' },
          },
        },
        quick: {
          entry: 'stopQuick',
        },
      },
    },
    dead: {
      type: 'final',
      entry: 'exit',
    },
  },
})

function isNewGenerationBootFailure(context: MasterContext, event: MasterEvent): boolean {
  return (
    event.type === 'WORKER_EXIT' &&
    isBootFailure(context, event.id, event.code) &&
    context.workers.find((w) => w.id === event.id)?.generation === context.generation
  )
}

// Writes a Step into the running action: context first, so that commands
// emitted afterwards see the world they describe.
function apply(
  enqueue: { assign: (ctx: MasterContext) => void; emit: (cmd: MasterCommand) => void },
  step: Step,
): void {
  enqueue.assign(step.context)
  for (const command of step.commands) enqueue.emit(command)
}

export type { MasterCommand, MasterContext, MasterInput, MasterSettings }
