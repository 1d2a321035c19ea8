// One worker process's life as a statechart. Pure, like the master: the
// runtime in src/worker/main.ts feeds it events and carries out what it emits.
import { assertEvent, emit, enqueueActions, setup } from 'xstate'
import { type APP_LOAD_ERROR, type BOOT_ERROR, RUNTIME_ERROR } from './exit-codes.ts'

export type WorkerSignal = 'TERM' | 'QUIT' | 'INT'

export type WorkerEvent =
  /** The app is imported and every listener is being served. */
  | { type: 'LOADED' }
  /** The app could not be imported, or the worker could not boot (listeners, privileges). */
  | { type: 'BOOT_FAILED'; code: typeof APP_LOAD_ERROR | typeof BOOT_ERROR; reason: string }
  | { type: 'SIGNAL'; signal: WorkerSignal }
  /** The IPC channel closed: the master is gone, and so must we be. */
  | { type: 'MASTER_GONE' }
  /** The master asked for log files to be reopened (USR1 on the master). */
  | { type: 'REOPEN_LOGS' }
  /** The last connection closed after the accept stopped. */
  | { type: 'DRAINED' }
  /** A limit was reached (max requests, max memory): drain and exit, as leaving on purpose, not as a crash. */
  | { type: 'RETIRE'; reason: string }
  /**
   * An exception nobody caught: the worker exits with RUNTIME_ERROR, through
   * `dead` (and the workerExit hook). `reason`: the exception with its stack, logged once.
   */
  | { type: 'CRASHED'; reason: string }

export type WorkerCommand =
  | { type: 'boot' }
  | { type: 'announceReady' }
  | { type: 'stopAccepting' }
  | { type: 'closeAll' }
  | { type: 'reopenLogs' }
  /** Tell the master this worker is leaving by itself (its WORKER_RETIRING), so it starts a replacement. */
  | { type: 'retiring'; reason: string }
  | { type: 'log'; level: 'info' | 'warning' | 'error'; message: string }
  | { type: 'exit'; code: number }

export interface WorkerContext {
  readonly exitCode: number
}

const isSignal =
  (...names: WorkerSignal[]) =>
  ({ event }: { event: WorkerEvent }) =>
    event.type === 'SIGNAL' && names.includes(event.signal)

export const workerMachine = setup({
  types: {
    context: {} as WorkerContext,
    events: {} as WorkerEvent,
    emitted: {} as WorkerCommand,
  },
  actions: {
    boot: emit({ type: 'boot' }),
    announceReady: emit({ type: 'announceReady' }),
    stopAccepting: emit({ type: 'stopAccepting' }),
    closeAll: emit({ type: 'closeAll' }),
    reopenLogs: emit({ type: 'reopenLogs' }),
    bootFailed: enqueueActions(({ event, enqueue }) => {
      assertEvent(event, 'BOOT_FAILED')
      enqueue.assign({ exitCode: event.code })
      enqueue.emit({ type: 'log', level: 'error', message: event.reason })
    }),
    retiring: enqueueActions(({ event, enqueue }) => {
      assertEvent(event, 'RETIRE')
      enqueue.emit({ type: 'retiring', reason: event.reason })
    }),
    crashed: enqueueActions(({ event, enqueue }) => {
      assertEvent(event, 'CRASHED')
      enqueue.assign({ exitCode: RUNTIME_ERROR })
      enqueue.emit({ type: 'log', level: 'error', message: `Uncaught exception in worker; exiting: ${event.reason}` })
    }),
    masterGone: emit({ type: 'log', level: 'warning', message: 'Master is gone; shutting down' }),
    exit: enqueueActions(({ context, enqueue }) => enqueue.emit({ type: 'exit', code: context.exitCode })),
  },
  guards: {
    isGraceful: isSignal('TERM', 'QUIT'),
    isQuick: isSignal('INT'),
  },
}).createMachine({
  id: 'worker',
  context: { exitCode: 0 },
  initial: 'booting',
  states: {
    // Importing the app and taking up the inherited listeners. Nothing is
    // being served yet, so any stop is immediate.
    booting: {
      entry: 'boot',
      on: {
        LOADED: 'running',
        BOOT_FAILED: { target: 'dead', actions: 'bootFailed' },
        SIGNAL: 'dead',
        MASTER_GONE: { target: 'dead', actions: 'masterGone' },
        CRASHED: { target: 'dead', actions: 'crashed' },
      },
    },
    running: {
      entry: 'announceReady',
      on: {
        SIGNAL: [
          { guard: 'isGraceful', target: 'draining' },
          { guard: 'isQuick', target: 'dead', actions: 'closeAll' },
        ],
        MASTER_GONE: { target: 'dead', actions: ['masterGone', 'closeAll'] },
        REOPEN_LOGS: { actions: 'reopenLogs' },
        // Retiring is a graceful stop the worker asks for itself, said to the master first.
        RETIRE: { target: 'draining', actions: 'retiring' },
        CRASHED: { target: 'dead', actions: ['crashed', 'closeAll'] },
      },
    },
    // Graceful: no new connections; requests in flight finish, and each
    // keep-alive connection is answered once more with Connection: close.
    draining: {
      entry: 'stopAccepting',
      on: {
        DRAINED: 'dead',
        SIGNAL: { target: 'dead', actions: 'closeAll' },
        MASTER_GONE: { target: 'dead', actions: ['masterGone', 'closeAll'] },
        REOPEN_LOGS: { actions: 'reopenLogs' },
        CRASHED: { target: 'dead', actions: ['crashed', 'closeAll'] },
      },
    },
    dead: {
      type: 'final',
      entry: 'exit',
    },
  },
})
