// The server hooks that run in the master: nworkersChanged, onStarting,
// whenReady, onReload, preFork, childExit, workerAbort, preExec, onExit
// (spec/hooks.md). They fire from the shell (src/master/main.ts) as it
// carries out the master machine's commands: workersChanged, reloadStarted,
// spawnWorker, workerExited, abortWorker, reexec, exit. The machine knows
// nothing of hooks, and the hooks keep no state of the workers: what they are
// told comes with the commands, and the live workers are the pool's.
//
// The machine's worker commands and the hooks they call are carried out one
// at a time, in the order the machine emitted them (one Effect semaphore,
// whose waiters go first in, first out): a childExit runs before the preFork
// of the worker replacing it, and a spawn that waits for preFork holds back
// the commands after it, as gunicorn's arbiter, which runs its hooks inline,
// would. When nothing is waiting and no hook is set, a command is carried
// out at once. Nothing is reordered: the order is the machine's.
import { resolve } from 'node:path'
import * as Cause from 'effect/Cause'
import * as Effect from 'effect/Effect'
import * as Semaphore from 'effect/Semaphore'
import type { Logger } from '../logging/log.ts'
import type { Settings } from '../config/registry.ts'
import { START_CWD } from '../process/process-settings.ts'
import {
  WORKER_HOOK_NAMES,
  callHook,
  logHookFailure,
  reason,
  withinMs,
  type AbortedWorker,
  type ExitedWorker,
  type HookName,
  type Hooks,
  type Server,
  type WorkerHookRef,
  type WorkerInfo,
} from '../hooks/hooks.ts'

/** The longest the master waits for workerAbort before it kills the stuck worker anyway. */
const WORKER_ABORT_WAIT_MS = 5_000
/** The longest an exiting master waits for hooks still queued (childExit…) before onExit. */
const EXIT_QUEUE_WAIT_MS = 5_000

/**
 * What a new worker is told about its hooks: the config file (absolute: the
 * worker may run in --chdir) and the worker-side hooks it sets, or undefined
 * when it sets none, so that the worker does not import it at all.
 */
export function workerHookRef(settings: Pick<Settings, 'config' | HookName>): WorkerHookRef | undefined {
  const names = WORKER_HOOK_NAMES.filter((n) => typeof settings[n] === 'function')
  if (names.length === 0 || settings.config === undefined) return undefined
  return { file: resolve(START_CWD, settings.config), names }
}

export interface MasterHooksOptions {
  /** The settings in force: their hooks are the ones called (a reload changes them). */
  readonly settings: () => Settings
  readonly app: string
  readonly name: string
  readonly log: Logger
  /** The worker processes alive now (the pool's). */
  readonly workers: () => readonly WorkerInfo[]
}

export function createMasterHooks({ settings, app, name, log, workers }: MasterHooksOptions) {
  let listeners: readonly string[] = []
  let numWorkers = settings().workers
  /** whenReady has run: the machine runs, and onExit is due when it stops. */
  let started = false

  const hook = <N extends HookName>(n: N): Hooks[N] | undefined => settings()[n] as Hooks[N] | undefined
  const call = <N extends HookName>(n: N, ...args: Parameters<Hooks[N]>): Promise<string | undefined> =>
    callHook(log, n, hook(n), args)

  const server: Server = {
    pid: process.pid,
    app,
    name,
    log,
    get settings() {
      return settings()
    },
    get numWorkers() {
      return numWorkers
    },
    get listeners() {
      return listeners
    },
    get workers() {
      return workers().filter((w) => w.pid !== undefined)
    },
  }

  // The machine's order: one task at a time, each after those given before it.
  const lane = Semaphore.makeUnsafe(1)
  function inOrder(task: Effect.Effect<unknown>): void {
    Effect.runFork(
      lane.withPermits(1)(
        task.pipe(
          Effect.catchCause((cause) =>
            Effect.sync(() => log.exception('Server hooks: unexpected error', Cause.squash(cause))),
          ),
        ),
      ),
    )
  }
  const hookCall = <N extends HookName>(n: N, ...args: Parameters<Hooks[N]>) => Effect.promise(() => call(n, ...args))

  return {
    server,

    /**
     * Before anything is bound: nworkersChanged with the starting number (as
     * gunicorn's setup), then onStarting. Rejects with the reason when
     * onStarting fails: corral then does not start.
     */
    async starting(): Promise<void> {
      await call('nworkersChanged', server, numWorkers, undefined)
      const onStarting = hook('onStarting')
      if (onStarting === undefined) return
      try {
        await onStarting(server)
      } catch (err) {
        logHookFailure(log, 'onStarting', err)
        throw new Error(`onStarting hook failed: ${reason(err)}; not starting`)
      }
    },

    /** The listeners are bound: whenReady, before the machine spawns the first workers. */
    async ready(addresses: readonly string[]): Promise<void> {
      listeners = addresses
      await call('whenReady', server)
      started = true
    },

    /** The machine's `workersChanged`: nworkersChanged. */
    workersChanged(workers: number, previous: number): void {
      numWorkers = workers
      if (hook('nworkersChanged')) inOrder(hookCall('nworkersChanged', server, workers, previous))
    },

    /** The machine's `reloadStarted` (the settings in force are already the new ones): onReload, before the new generation's first spawn. */
    reloadStarted(): void {
      if (hook('onReload')) inOrder(hookCall('onReload', server))
    },

    /** The machine's `spawnWorker`: preFork, then `spawn`, after the commands before it. */
    spawning(worker: { id: number; generation: number }, spawn: () => void): void {
      const preFork = hook('preFork')
        ? hookCall('preFork', server, { id: worker.id, pid: undefined, generation: worker.generation })
        : Effect.void
      inOrder(Effect.andThen(preFork, Effect.sync(spawn)))
    },

    /** A command for a worker (stop, kill, abort): after the commands before it. */
    inOrder(command: () => void): void {
      inOrder(Effect.sync(command))
    },

    /** The machine's `workerExited`: childExit. */
    workerExited(worker: ExitedWorker): void {
      if (hook('childExit')) inOrder(hookCall('childExit', server, worker))
    },

    /** For an `abortWorker`: workerAbort, if set, as the pool's last step before the SIGKILL. */
    aborting(): ((worker: Omit<AbortedWorker, 'log'>) => Promise<void>) | undefined {
      const workerAbort = hook('workerAbort')
      if (!workerAbort) return undefined
      return (worker) =>
        withinMs(
          log,
          'Hook workerAbort',
          callHook(log, 'workerAbort', workerAbort, [{ ...worker, log }]),
          WORKER_ABORT_WAIT_MS,
        )
    },

    /**
     * The machine's `preExec` (USR2): the hook, after the commands before
     * it; `report` hears its failure's reason, or undefined.
     */
    preExec(report: (failure: string | undefined) => void): void {
      const preExec = hook('preExec') ? hookCall('preExec', server) : Effect.succeed(undefined)
      inOrder(Effect.map(preExec, report))
    },

    /** The master is exiting, its workers gone and its pidfile removed: onExit, after any hook still queued. */
    async exiting(): Promise<void> {
      if (!started) return
      const queued = Effect.runPromise(lane.withPermits(1)(Effect.void))
      await withinMs(log, 'Server hooks queued before onExit', queued, EXIT_QUEUE_WAIT_MS)
      await call('onExit', server)
    },
  }
}

export type MasterHooks = ReturnType<typeof createMasterHooks>
