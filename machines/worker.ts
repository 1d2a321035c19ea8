// One worker process's life as a statechart. Pure, like the master: the
// runtime in src/worker/main.ts feeds it events and carries out what it emits.
import { emit, enqueueActions, setup } from 'xstate'
import type { APP_LOAD_ERROR, BOOT_ERROR } from './exit-codes.ts'

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

export type WorkerCommand =
  | { type: 'boot' }
  | { type: 'announceReady' }
  | { type: 'stopAccepting' }
  | { type: 'closeAll' }
  | { type: 'reopenLogs' }
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
      if (event.type !== 'BOOT_FAILED') return
      enqueue.assign({ exitCode: event.code })
      enqueue.emit({ type: 'log', level: 'error', message: event.reason })
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
      },
    },
    dead: {
      type: 'final',
      entry: 'exit',
    },
  },
})
