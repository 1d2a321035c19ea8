// The master (gunicorn's arbiter) as a statechart. Pure: it owns no timers and
// does no I/O. Everything that happens reaches it as an event; everything it
// wants done leaves it as an emitted command (see MasterCommand), which the
// shell in src/master/main.ts carries out.
import { enqueueActions, setup } from 'xstate'
import {
  abandonGeneration,
  APP_LOAD_ERROR,
  applySettings,
  retiring,
  converge,
  forget,
  heartbeat,
  initialContext,
  isBootFailure,
  isFatalBootFailure,
  markReady,
  readyCount,
  retireOldGenerations,
  setTarget,
  startGeneration,
  stopEverything,
  tick,
  type MasterCommand,
  type MasterContext,
  type MasterInput,
  type Step,
} from './master-workers.ts'

export type Signal = 'HUP' | 'QUIT' | 'TERM' | 'INT' | 'TTIN' | 'TTOU' | 'USR1' | 'USR2' | 'WINCH'
export const SIGNALS: readonly Signal[] = ['HUP', 'QUIT', 'TERM', 'INT', 'TTIN', 'TTOU', 'USR1', 'USR2', 'WINCH']

export type MasterEvent =
  /** `daemonized` (WINCH only): the shell's view of whether a terminal could have sent it. */
  | { type: 'SIGNAL'; signal: Signal; daemonized?: boolean }
  | { type: 'WORKER_READY'; id: number }
  | { type: 'WORKER_EXIT'; id: number; code: number | null; signal: string | null }
  | { type: 'HEARTBEAT'; id: number }
  /** The worker drains and exits by itself (max requests, max memory): not a crash. */
  | { type: 'WORKER_RETIRING'; id: number; reason: string }
  | { type: 'TICK'; now: number }
  /**
   * HUP re-read the settings; sent just before the HUP itself. They apply to
   * the generation the HUP starts (nothing converges on this event alone).
   */
  | { type: 'SETTINGS'; workers: number; timeoutMs: number; gracefulMs: number }
  /** USR2: the new master could not be started at all (refused, spawn failed). */
  | { type: 'REEXEC_FAILED'; reason: string }
  /** USR2: the new master reports that its workers are serving. */
  | { type: 'REEXEC_READY' }
  /** USR2: the new master exited (before or after it was ready). */
  | { type: 'REEXEC_EXIT'; code: number | null; signal: string | null }

type SignalEvent = Extract<MasterEvent, { type: 'SIGNAL' }>
type ExitEvent = Extract<MasterEvent, { type: 'WORKER_EXIT' }>

const isSignal =
  (...names: Signal[]) =>
  ({ event }: { event: MasterEvent }) =>
    event.type === 'SIGNAL' && names.includes(event.signal)

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
      if (event.type === 'WORKER_READY') enqueue.assign(markReady(context, event.id))
    }),
    reloadFromSteady: enqueueActions(({ enqueue }) => enqueue.assign({ reloadFromIdle: false })),
    reloadFromIdle: enqueueActions(({ enqueue }) => enqueue.assign({ reloadFromIdle: true })),
    retiring: enqueueActions(({ context, event, enqueue }) => {
      if (event.type !== 'WORKER_RETIRING') return
      enqueue.emit(log('info', `Worker ${event.id} is retiring (${event.reason}); starting its replacement`))
      enqueue.assign(retiring(context, event.id))
    }),
    heartbeat: enqueueActions(({ context, event, enqueue }) => {
      if (event.type === 'HEARTBEAT') enqueue.assign(heartbeat(context, event.id))
    }),
    forget: enqueueActions(({ context, event, enqueue }) => {
      if (event.type === 'WORKER_EXIT') apply(enqueue, forget(context, event.id))
    }),
    tick: enqueueActions(({ context, event, enqueue }) => {
      if (event.type === 'TICK') apply(enqueue, tick(context, event.now))
    }),
    ttin: enqueueActions(({ context, enqueue }) => {
      const next = setTarget(context, context.target + 1)
      enqueue.emit(log('info', `Number of workers: ${context.target} -> ${next.target}`))
      enqueue.assign(next)
    }),
    ttou: enqueueActions(({ context, enqueue }) => {
      if (context.target <= 1) {
        enqueue.emit(log('info', 'TTOU ignored: one worker is the minimum'))
        return
      }
      enqueue.emit(log('info', `Number of workers: ${context.target} -> ${context.target - 1}`))
      enqueue.assign(setTarget(context, context.target - 1))
    }),
    reopenLogs: enqueueActions(({ enqueue }) => enqueue.emit({ type: 'reopenLogs' })),
    queueReload: enqueueActions(({ context, enqueue }) => {
      enqueue.emit(
        log('info', context.reloadQueued ? 'Reload already queued' : 'Reload queued until the one in flight completes'),
      )
      enqueue.assign({ reloadQueued: true })
    }),
    startGeneration: enqueueActions(({ context, enqueue }) => {
      const next = startGeneration(context)
      enqueue.emit(log('info', `Reloading: starting worker generation ${next.generation}`))
      apply(enqueue, converge(next))
    }),
    retireOldGenerations: enqueueActions(({ context, enqueue }) => {
      enqueue.emit(log('info', `Reload complete: generation ${context.generation} is serving`))
      apply(enqueue, retireOldGenerations(context))
    }),
    abandonGeneration: enqueueActions(({ context, event, enqueue }) => {
      const code = (event as ExitEvent).code
      enqueue.emit(
        log(
          'error',
          `Reload abandoned: a worker of generation ${context.generation} exited with code ${code} while booting; generation ${context.previousGeneration} keeps serving`,
        ),
      )
      // forget() would count the failed worker as a crash; it is a refusal.
      const rest = { ...context, workers: context.workers.filter((w) => w.id !== (event as ExitEvent).id) }
      apply(enqueue, abandonGeneration(rest))
    }),
    halt: enqueueActions(({ context, event, enqueue }) => {
      const { id, code } = event as ExitEvent
      const why = code === APP_LOAD_ERROR ? 'App failed to load' : 'Worker failed to boot'
      enqueue.emit(log('critical', `${why}: worker ${id} exited with code ${code}; shutting down`))
      enqueue.assign({ exitCode: code ?? 1, workers: context.workers.filter((w) => w.id !== id) })
    }),
    stopGraceful: enqueueActions(({ context, enqueue }) => apply(enqueue, stopEverything(context, 'graceful'))),
    stopQuick: enqueueActions(({ context, enqueue }) => apply(enqueue, stopEverything(context, 'quick'))),
    announceReady: enqueueActions(({ context, enqueue }) =>
      enqueue.emit({ type: 'ready', workers: readyCount(context) }),
    ),
    reexec: enqueueActions(({ enqueue }) => {
      enqueue.assign({ childMaster: 'starting' })
      enqueue.emit({ type: 'reexec' })
    }),
    refuseReexec: enqueueActions(({ context, enqueue }) =>
      enqueue.emit(
        log(
          'warning',
          context.childMaster !== 'none'
            ? 'USR2 refused: a new master is already running; QUIT one of the two first'
            : 'USR2 refused: a reload or re-exec is in flight, or the workers are stopped (WINCH)',
        ),
      ),
    ),
    // Rollback: the new master never got ready. Nothing here changed but the
    // pidfile's name, and that is put back.
    reexecFailed: enqueueActions(({ event, enqueue }) => {
      const why =
        event.type === 'REEXEC_FAILED'
          ? event.reason
          : event.type === 'REEXEC_EXIT'
            ? `the new master exited ${event.signal ? `on ${event.signal}` : `with code ${event.code}`} before it was ready`
            : 'unknown'
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
    // The new master is gone after it was ready: this one is the master again.
    childMasterGone: enqueueActions(({ event, enqueue }) => {
      const e = event as Extract<MasterEvent, { type: 'REEXEC_EXIT' }>
      enqueue.assign({ childMaster: 'none' })
      enqueue.emit(
        log('warning', `The new master exited (${e.signal ?? `code ${e.code}`}); this master is in charge again`),
      )
      enqueue.emit({ type: 'restorePidfile' })
    }),
    ignoreWinch: enqueueActions(({ event, enqueue }) =>
      enqueue.emit(
        log(
          'info',
          (event as SignalEvent).daemonized
            ? 'WINCH ignored: only a running master with no reload in flight stops its workers'
            : 'WINCH ignored: not daemonized (a terminal sends WINCH on every resize)',
        ),
      ),
    ),
    idle: enqueueActions(({ context, enqueue }) => {
      enqueue.emit(log('info', 'WINCH: stopping all workers gracefully; HUP starts them again'))
      apply(enqueue, stopEverything(context, 'graceful'))
    }),
    ignoreInDrain: enqueueActions(({ event, enqueue }) => {
      enqueue.emit(log('info', `${(event as SignalEvent).signal} ignored while shutting down`))
    }),
    alreadyHandingOver: enqueueActions(({ enqueue }) =>
      enqueue.emit(log('info', 'QUIT: already handing over to the new master')),
    ),
    applySettings: enqueueActions(({ context, event, enqueue }) => {
      if (event.type !== 'SETTINGS') return
      if (event.workers !== context.target)
        enqueue.emit(
          log('info', `Number of workers: ${context.target} -> ${event.workers} (from the re-read settings)`),
        )
      enqueue.assign(applySettings(context, event))
    }),
    exit: enqueueActions(({ context, enqueue }) => enqueue.emit({ type: 'exit', code: context.exitCode })),
  },
  guards: {
    isBootFailure: ({ context, event }) =>
      event.type === 'WORKER_EXIT' && isFatalBootFailure(context, event.id, event.code),
    // During a reload a refusal to boot from the new generation undoes the
    // reload instead of halting: the old generation is still serving.
    isNewGenerationBootFailure: ({ context, event }) =>
      event.type === 'WORKER_EXIT' &&
      isBootFailure(context, event.id, event.code) &&
      context.workers.find((w) => w.id === event.id)?.generation === context.generation,
    // Abandoned, a reload started after WINCH goes back to idle: this master was not serving.
    isIdleReloadBootFailure: ({ context, event }) =>
      context.reloadFromIdle &&
      event.type === 'WORKER_EXIT' &&
      isBootFailure(context, event.id, event.code) &&
      context.workers.find((w) => w.id === event.id)?.generation === context.generation,
    allReady: ({ context }) => readyCount(context) >= context.target,
    reloadQueued: ({ context }) => context.reloadQueued,
    noWorkersLeft: ({ context }) => context.workers.length === 0,
    isGracefulStop: isSignal('QUIT', 'TERM'),
    isQuickStop: isSignal('INT'),
    isStop: isSignal('QUIT', 'TERM', 'INT'),
    isHup: isSignal('HUP'),
    isTtin: isSignal('TTIN'),
    isTtou: isSignal('TTOU'),
    isUsr1: isSignal('USR1'),
    isUsr2: isSignal('USR2'),
    isWinch: isSignal('WINCH'),
    isDaemonizedWinch: ({ event }) => event.type === 'SIGNAL' && event.signal === 'WINCH' && event.daemonized === true,
    canReexec: ({ context, event }) =>
      event.type === 'SIGNAL' && event.signal === 'USR2' && context.childMaster === 'none',
    isAutoUpgrade: ({ context }) => context.upgrade === 'auto',
    isQuitDuringHandover: ({ context, event }) =>
      event.type === 'SIGNAL' && event.signal === 'QUIT' && context.childMaster === 'ready',
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
        HEARTBEAT: { actions: 'heartbeat' },
        TICK: { actions: ['tick', 'converge'] },
        WORKER_READY: { actions: 'markReady' },
        WORKER_EXIT: [
          { guard: 'isBootFailure', target: '#master.draining.quick', actions: 'halt' },
          { actions: ['forget', 'converge'] },
        ],
        REEXEC_EXIT: { actions: 'childMasterGone' },
        SETTINGS: { actions: 'applySettings' },
        WORKER_RETIRING: { actions: ['retiring', 'converge'] },
        SIGNAL: [
          { guard: 'isGracefulStop', target: 'draining.graceful' },
          { guard: 'isQuickStop', target: 'draining.quick' },
          { guard: 'isTtin', actions: ['ttin', 'converge'] },
          { guard: 'isTtou', actions: ['ttou', 'converge'] },
          { guard: 'isUsr1', actions: 'reopenLogs' },
          { guard: 'isHup', actions: 'queueReload' },
          { guard: 'isUsr2', actions: 'refuseReexec' },
          { guard: 'isWinch', actions: 'ignoreWinch' },
        ],
      },
      states: {
        // The first generation is starting; serving begins with its first
        // worker, "ready" is announced once all of them are up.
        booting: {
          entry: 'converge',
          always: { guard: 'allReady', target: 'running', actions: 'announceReady' },
        },
        running: {
          initial: 'steady',
          states: {
            steady: {
              always: { guard: 'reloadQueued', target: 'reloading', actions: 'reloadFromSteady' },
              on: {
                SIGNAL: [
                  { guard: 'isHup', target: 'reloading', actions: 'reloadFromSteady' },
                  { guard: 'canReexec', target: '#master.active.reexecing' },
                  { guard: 'isDaemonizedWinch', target: 'idle' },
                ],
              },
            },
            // WINCH (daemonized only): every worker stops gracefully and the
            // master stays, holding the listeners, spawning nothing, until a
            // HUP starts a new generation (the manual rollback of an upgrade)
            // or a stop signal ends it (the manual finish).
            idle: {
              entry: 'idle',
              on: {
                SIGNAL: [
                  { guard: 'isHup', target: 'reloading', actions: 'reloadFromIdle' },
                  // The target changes; workers come with the next HUP.
                  { guard: 'isTtin', actions: 'ttin' },
                  { guard: 'isTtou', actions: 'ttou' },
                ],
                TICK: { actions: 'tick' },
                WORKER_EXIT: { actions: 'forget' },
                WORKER_RETIRING: { actions: 'retiring' },
              },
            },
            // HUP: a new generation boots beside the old one, which stops
            // gracefully once the new one is fully ready. One at a time: a
            // HUP meanwhile is queued (queueReload, on `active`).
            reloading: {
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
        // USR2: a new master is starting as this one's child, with the
        // listeners. Until it reports ready this master serves as before; if
        // it dies first, that is the rollback: the pidfile's name is put back
        // and nothing else has changed.
        reexecing: {
          entry: 'reexec',
          on: {
            REEXEC_FAILED: { target: 'running', actions: 'reexecFailed' },
            REEXEC_EXIT: { target: 'running', actions: 'reexecFailed' },
            REEXEC_READY: [
              { guard: 'isAutoUpgrade', target: '#master.draining.graceful', actions: 'childMasterReady' },
              { target: 'running', actions: 'childMasterReady' },
            ],
          },
        },
      },
    },
    // Stopping: every worker is told to stop; stragglers are SIGKILLed at
    // their deadline (tick). A second stop signal turns graceful into quick.
    draining: {
      initial: 'graceful',
      always: { guard: 'noWorkersLeft', target: 'dead' },
      on: {
        HEARTBEAT: { actions: 'heartbeat' },
        TICK: { actions: 'tick' },
        WORKER_EXIT: { actions: 'forget' },
        WORKER_RETIRING: { actions: 'retiring' },
        REEXEC_EXIT: { actions: 'childMasterGone' },
        SIGNAL: [{ guard: 'isUsr1', actions: 'reopenLogs' }, { actions: 'ignoreInDrain' }],
      },
      states: {
        graceful: {
          entry: 'stopGraceful',
          on: {
            SIGNAL: [
              // Handing over to a new master, QUIT is the operator's (or
              // `corral upgrade`'s) finishing step, already under way.
              { guard: 'isQuitDuringHandover', actions: 'alreadyHandingOver' },
              { guard: 'isStop', target: 'quick' },
              { guard: 'isUsr1', actions: 'reopenLogs' },
              { actions: 'ignoreInDrain' },
            ],
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

// Writes a Step into the running action: context first, so that commands
// emitted afterwards see the world they describe.
function apply(
  enqueue: { assign: (ctx: MasterContext) => void; emit: (cmd: MasterCommand) => void },
  step: Step,
): void {
  enqueue.assign(step.context)
  for (const command of step.commands) enqueue.emit(command)
}

export type { MasterCommand, MasterContext, MasterInput }
