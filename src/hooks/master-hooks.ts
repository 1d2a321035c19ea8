// The server hooks that run in the master: nworkersChanged, onStarting,
// whenReady, onReload, preFork, childExit, workerAbort, preExec, onExit
// (spec/hooks.md). The master machine stays as it is: hooks fire from the
// shell where its commands are carried out (spawnWorker, abortWorker,
// reexec, exit) or where its events arrive (WORKER_EXIT), and from its
// microsteps (the number of workers, entering a reload).
//
// Master hooks run one at a time, in the order they were triggered (a
// childExit before the preFork of the worker replacing it). A spawn waits for
// the hooks before it when preFork or onReload is set; with neither set, and
// nothing queued, a worker is spawned at once, as without hooks.
import { resolve } from 'node:path'
import type { InspectionEvent } from 'xstate'
import type { MasterEvent } from '../../machines/master.ts'
import type { MasterContext } from '../../machines/master-workers.ts'
import type { Logger } from '../logging/log.ts'
import type { Settings } from '../config/registry.ts'
import type { WorkerPool } from '../master/worker-pool.ts'
import { START_CWD } from '../process/process-settings.ts'
import {
  WORKER_HOOK_NAMES,
  callHook,
  logHookFailure,
  reason,
  withinMs,
  type HookName,
  type Hooks,
  type Server,
  type WorkerHookRef,
} from './hooks.ts'

/** The longest the master waits for workerAbort before it kills the stuck worker anyway. */
const WORKER_ABORT_WAIT_MS = 5_000
/** The longest an exiting master waits for hooks still queued (childExit…) before onExit. */
const EXIT_QUEUE_WAIT_MS = 5_000

/**
 * What a new worker is told about its hooks: the config file (absolute: the
 * worker may run in --chdir) and the worker-side hooks it sets, or undefined
 * when it sets none, so that the worker does not import it at all.
 */
export function workerHookRef(settings: Settings): WorkerHookRef | undefined {
  const names = WORKER_HOOK_NAMES.filter((n) => typeof settings[n] === 'function')
  if (names.length === 0 || settings.config === undefined) return undefined
  return { file: resolve(START_CWD, settings.config), names }
}

export interface MasterHooksOptions {
  readonly settings: Settings
  readonly app: string
  readonly name: string
  readonly log: Logger
}

export function createMasterHooks({ settings: initial, app, name, log }: MasterHooksOptions) {
  let settings = initial
  let listeners: readonly string[] = []
  let numWorkers = initial.workers
  /** The machine's context as of its latest microstep. */
  let context: MasterContext | undefined
  let reloading = false
  /** A reload entered this generation; onReload runs before its first spawn. */
  let reloadGeneration: number | undefined
  /** whenReady has run: the machine runs, and onExit is due when it stops. */
  let started = false
  let emit: (event: MasterEvent) => void = () => {}
  /** Workers spawned and not yet exited, as hooks are shown them. */
  const spawned = new Map<number, { pid: number | undefined; generation: number }>()

  const hook = <N extends HookName>(n: N): Hooks[N] | undefined => settings[n] as Hooks[N] | undefined
  const call = <N extends HookName>(n: N, ...args: Parameters<Hooks[N]>): Promise<boolean> =>
    callHook(log, n, hook(n), args)

  const server: Server = {
    pid: process.pid,
    app,
    name,
    log,
    get settings() {
      return settings
    },
    get numWorkers() {
      return numWorkers
    },
    get listeners() {
      return listeners
    },
    get workers() {
      return [...spawned].flatMap(([id, w]) =>
        w.pid === undefined ? [] : [{ id, pid: w.pid, generation: w.generation }],
      )
    },
  }

  // One hook at a time, in trigger order.
  let queue: Promise<void> = Promise.resolve()
  let pending = 0
  function enqueue(task: () => Promise<unknown>): void {
    pending++
    queue = queue.then(async () => {
      try {
        await task()
      } catch (err) {
        log.exception('Server hooks: unexpected error', err)
      } finally {
        pending--
      }
    })
  }

  const generationOf = (id: number): number =>
    context?.workers.find((w) => w.id === id)?.generation ?? context?.generation ?? 0

  /** Call this with the pool the master builds (its emit wrapped by observe): spawns, aborts and settings go through the hooks. */
  function wrapPool(pool: WorkerPool): WorkerPool {
    const spawnNow = (id: number, generation: number) => {
      pool.spawnWorker(id)
      spawned.set(id, { pid: pool.pidOf(id), generation })
    }
    return {
      ...pool,
      spawnWorker(id) {
        const generation = generationOf(id)
        if (pending === 0 && !hook('preFork') && !hook('onReload')) return spawnNow(id, generation)
        enqueue(async () => {
          if (reloadGeneration === generation) {
            reloadGeneration = undefined
            await call('onReload', server)
          }
          await call('preFork', server, { id, pid: undefined, generation })
          // A stop or a heartbeat timeout may have come while the hooks ran:
          // then the worker is not started, and the machine hears it is gone.
          const status = context?.workers.find((w) => w.id === id)?.status
          if (status !== undefined && status !== 'booting')
            return emit({ type: 'WORKER_EXIT', id, code: null, signal: null })
          spawnNow(id, generation)
        })
      },
      abortWorker(id) {
        const aborting = hook('workerAbort')
        const generation = spawned.get(id)?.generation ?? generationOf(id)
        return pool.abortWorker(
          id,
          aborting &&
            ((pid, stack) =>
              withinMs(
                log,
                'Hook workerAbort',
                callHook(log, 'workerAbort', aborting, [{ id, pid, generation, stack, log }]),
                WORKER_ABORT_WAIT_MS,
              )),
        )
      },
      setSettings(next) {
        // HUP re-read the config file: its hooks are the ones from now on.
        settings = next
        pool.setSettings(next)
      },
    }
  }

  return {
    server,

    /** Wraps the master's emit: a worker's exit is seen (childExit) before the machine hears of it. */
    observe(masterEmit: (event: MasterEvent) => void): (event: MasterEvent) => void {
      emit = masterEmit
      return (event) => {
        if (event.type === 'WORKER_EXIT') {
          const w = spawned.get(event.id)
          spawned.delete(event.id)
          if (w !== undefined && hook('childExit')) {
            const exited = {
              id: event.id,
              pid: w.pid,
              generation: w.generation,
              exitCode: event.code,
              signal: event.signal,
            }
            enqueue(() => call('childExit', server, exited))
          }
        }
        masterEmit(event)
      }
    },

    wrapPool,

    /** For createActor's `inspect`: follows the machine's microsteps for the number of workers and reload starts. */
    inspect(event: InspectionEvent): void {
      if (event.type !== '@xstate.microstep') return
      const snapshot = event.snapshot as unknown as { context: MasterContext; matches(value: unknown): boolean }
      context = snapshot.context
      if (context.target !== numWorkers) {
        const old = numWorkers
        const now = context.target
        numWorkers = now
        if (hook('nworkersChanged')) enqueue(() => call('nworkersChanged', server, now, old))
      }
      const nowReloading = snapshot.matches({ active: { running: 'reloading' } })
      if (nowReloading && !reloading) reloadGeneration = context.generation
      reloading = nowReloading
    },

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

    /** USR2: preExec, then `reexec` (at once when there is no hook and nothing queued). */
    beforeReexec(reexec: () => void): void {
      if (pending === 0 && !hook('preExec')) return reexec()
      enqueue(async () => {
        await call('preExec', server)
        reexec()
      })
    },

    /** The master is exiting, its workers gone and its pidfile removed: onExit, after any hook still queued. */
    async exiting(): Promise<void> {
      if (!started) return
      if (pending > 0) await withinMs(log, 'Server hooks queued before onExit', queue, EXIT_QUEUE_WAIT_MS)
      await call('onExit', server)
    },
  }
}
