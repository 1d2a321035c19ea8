// One worker process's life as a statechart. Pure, like the master: the
// runtime in src/worker/main.ts feeds it events and carries out what it emits.
import { assertEvent, emit, enqueueActions, setup } from 'xstate'
import { APP_LOAD_ERROR, type BOOT_ERROR, RUNTIME_ERROR } from './exit-codes.ts'

/**
 * Why a worker leaves by itself: `--max-requests`, `--max-memory`, or
 * anything else that makes it drain and go (the app closed its server, a
 * listener it could not get back). The master counts each as what it is.
 */
export type RetireCause = 'max-requests' | 'max-memory' | 'retired'

export type WorkerSignal = 'TERM' | 'QUIT' | 'INT'

export type WorkerEvent =
  /** The app's module is imported and exports an app (a handler, a framework instance, a server). */
  | { type: 'APP_EXPORTED' }
  /**
   * The app called listen() on a server of its own (an http, https or http2
   * server; numbered from 0 in the order they listened), during its import
   * or after. Nothing was bound (src/http/app-server.ts).
   */
  | { type: 'APP_LISTENED'; server: number }
  /** The module is imported, exports no app, and has started no server (yet: it may, once its own start-up resolves). */
  | { type: 'NOTHING_EXPORTED' }
  /** The wait for such a module's listen() is over (--timeout, or 30 s). */
  | { type: 'LISTEN_TIMEOUT'; seconds: number }
  /** The app called close() on the server corral serves for it. */
  | { type: 'APP_CLOSED' }
  /** Every listener is being served. */
  | { type: 'LOADED' }
  /** The app could not be imported, or the worker could not boot (listeners, privileges). */
  | { type: 'BOOT_FAILED'; code: typeof APP_LOAD_ERROR | typeof BOOT_ERROR; reason: string }
  | { type: 'SIGNAL'; signal: WorkerSignal }
  /** A spare (--standby) is told to take a serving worker's place: it starts accepting. */
  | { type: 'TAKE_OVER' }
  /** The IPC channel closed: the master is gone, and so must we be. */
  | { type: 'MASTER_GONE' }
  /** The master asked for log files to be reopened (USR1 on the master). */
  | { type: 'REOPEN_LOGS' }
  /** The last connection closed after the accept stopped. */
  | { type: 'DRAINED' }
  /** A limit was reached (max requests, max memory): drain and exit, as leaving on purpose, not as a crash. */
  | { type: 'RETIRE'; cause: RetireCause; reason: string }
  /**
   * An exception nobody caught: the worker exits with RUNTIME_ERROR, through
   * `dead` (and the workerExit hook). `reason`: the exception with its stack, logged once.
   */
  | {
      type: 'CRASHED'
      reason: string
      /** The exception in one line, where in the app it was thrown (file:line): what a load failure says. */
      summary?: string
    }

export type WorkerCommand =
  /** Load the app: import its module (with listen() caught) and classify what it exports. */
  | { type: 'boot' }
  /** Wait for a module that exported nothing to call listen(); LISTEN_TIMEOUT when the wait is over. */
  | { type: 'waitForListen' }
  /** Serve corral's listeners with the app: the exported one, or server N that called listen(). */
  | { type: 'serve'; from: 'export' }
  | { type: 'serve'; from: 'server'; server: number }
  /** Server N listened after another was served: it gets no connections, but its listen() succeeds. */
  | { type: 'leaveIdle'; server: number }
  | { type: 'announceReady' }
  /** A spare has loaded the app and waits, accepting nothing: the master may promote it. */
  | { type: 'announceStandby' }
  | { type: 'stopAccepting' }
  | { type: 'closeAll' }
  | { type: 'reopenLogs' }
  /** Tell the master this worker is leaving by itself (its WORKER_RETIRING), so it starts a replacement. */
  | { type: 'retiring'; cause: RetireCause; reason: string }
  | { type: 'log'; level: 'info' | 'warning' | 'error'; message: string }
  /** The app failed to load: told to the master, which prints it once for all workers. */
  | { type: 'loadFailed'; reason: string }
  | { type: 'exit'; code: number }

/** Which app to serve: the one exported, or server N that called listen(). */
type AppSource = { readonly from: 'export' } | { readonly from: 'server'; readonly server: number }

export interface WorkerContext {
  readonly exitCode: number
  /** Started as a spare (--standby): once loaded it waits in `standby` for TAKE_OVER instead of serving. */
  readonly spare: boolean
  /** What a spare will serve once it takes over, decided while it loaded. */
  readonly source?: AppSource | undefined
}

export interface WorkerInput {
  readonly spare?: boolean
}

const sourceOf = (event: WorkerEvent): AppSource =>
  event.type === 'APP_LISTENED' ? { from: 'server', server: event.server } : { from: 'export' }

const isSignal =
  (...names: WorkerSignal[]) =>
  ({ event }: { event: WorkerEvent }) =>
    event.type === 'SIGNAL' && names.includes(event.signal)

export const workerMachine = setup({
  types: {
    context: {} as WorkerContext,
    events: {} as WorkerEvent,
    emitted: {} as WorkerCommand,
    input: {} as WorkerInput,
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
      enqueue.emit(
        event.code === APP_LOAD_ERROR
          ? { type: 'loadFailed', reason: event.reason }
          : { type: 'log', level: 'error', message: event.reason },
      )
    }),
    waitForListen: emit({ type: 'waitForListen' }),
    startupFailed: enqueueActions(({ event, enqueue }) => {
      assertEvent(event, 'CRASHED')
      enqueue.assign({ exitCode: APP_LOAD_ERROR })
      enqueue.emit({
        type: 'loadFailed',
        reason: `App failed to load: ${event.summary ?? event.reason}`,
      })
    }),
    noServer: enqueueActions(({ event, enqueue }) => {
      assertEvent(event, 'LISTEN_TIMEOUT')
      enqueue.assign({ exitCode: APP_LOAD_ERROR })
      enqueue.emit({
        type: 'loadFailed',
        reason: `App failed to load: the module exports no app and started no server within ${event.seconds} s: export a (req, res) handler, a fetch handler or a framework app, or call listen() (see spec/apps.md)`,
      })
    }),
    // The app's source comes with the event that found it, or (a spare taking over) from the context.
    serve: enqueueActions(({ context, event, enqueue }) => {
      const source = event.type === 'TAKE_OVER' ? (context.source ?? { from: 'export' }) : sourceOf(event)
      enqueue.emit(source.from === 'server' ? { type: 'serve', ...source } : { type: 'serve', from: 'export' })
    }),
    keepSource: enqueueActions(({ event, enqueue }) => {
      assertEvent(event, ['APP_EXPORTED', 'APP_LISTENED'])
      enqueue.assign({ source: sourceOf(event) })
    }),
    announceStandby: emit({ type: 'announceStandby' }),
    leaveIdle: enqueueActions(({ event, enqueue }) => {
      assertEvent(event, 'APP_LISTENED')
      enqueue.emit({ type: 'leaveIdle', server: event.server })
    }),
    appClosed: emit({ type: 'retiring', cause: 'retired', reason: 'the app closed its server' }),
    retiring: enqueueActions(({ event, enqueue }) => {
      assertEvent(event, 'RETIRE')
      enqueue.emit({ type: 'retiring', cause: event.cause, reason: event.reason })
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
    isSpare: ({ context }) => context.spare,
  },
}).createMachine({
  id: 'worker',
  context: ({ input }) => ({ exitCode: 0, spare: input?.spare ?? false }),
  initial: 'booting',
  states: {
    // Importing the app, with listen() caught (src/http/app-server.ts).
    // Nothing is being served yet, so any stop is immediate. A server the
    // app starts during its import is served even before the import ends
    // (an app may await its own listen() at top level).
    booting: {
      entry: 'boot',
      on: {
        APP_EXPORTED: [{ guard: 'isSpare', target: 'standby', actions: 'keepSource' }, { target: 'starting' }],
        APP_LISTENED: [{ guard: 'isSpare', target: 'standby', actions: 'keepSource' }, { target: 'starting' }],
        NOTHING_EXPORTED: 'awaitingListen',
        BOOT_FAILED: { target: 'dead', actions: 'bootFailed' },
        SIGNAL: 'dead',
        MASTER_GONE: { target: 'dead', actions: 'masterGone' },
        // Thrown while the app is being imported (a timer, a rejected promise): the app failing to load.
        CRASHED: { target: 'dead', actions: 'startupFailed' },
      },
    },
    // The module exported nothing: its start-up (a framework's async
    // bootstrap, Next.js's, NestJS's) may still call listen().
    awaitingListen: {
      entry: 'waitForListen',
      on: {
        APP_LISTENED: [{ guard: 'isSpare', target: 'standby', actions: 'keepSource' }, { target: 'starting' }],
        LISTEN_TIMEOUT: { target: 'dead', actions: 'noServer' },
        BOOT_FAILED: { target: 'dead', actions: 'bootFailed' },
        SIGNAL: 'dead',
        MASTER_GONE: { target: 'dead', actions: 'masterGone' },
        // An async start-up that throws (a bootstrap() whose promise rejects): the app failing to load.
        CRASHED: { target: 'dead', actions: 'startupFailed' },
      },
    },
    // A spare (--standby): the app is imported (its import side effects have
    // run) and nothing is accepted, not even on the inherited listeners,
    // until the master promotes it. Nothing is served, so any stop is
    // immediate, as while booting.
    standby: {
      entry: 'announceStandby',
      on: {
        TAKE_OVER: 'starting',
        APP_LISTENED: { actions: 'leaveIdle' },
        SIGNAL: 'dead',
        MASTER_GONE: { target: 'dead', actions: 'masterGone' },
        REOPEN_LOGS: { actions: 'reopenLogs' },
        CRASHED: { target: 'dead', actions: 'crashed' },
      },
    },
    // Taking up the inherited listeners with the app: the one exported, or
    // the first server that listened (the event that led here says which).
    // Any later server is left idle: corral's binds serve one app.
    starting: {
      entry: 'serve',
      on: {
        LOADED: 'running',
        APP_LISTENED: { actions: 'leaveIdle' },
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
        // The app closing its own server is the app leaving: a graceful stop, and a replacement.
        APP_CLOSED: { target: 'draining', actions: 'appClosed' },
        APP_LISTENED: { actions: 'leaveIdle' },
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
        APP_LISTENED: { actions: 'leaveIdle' },
        CRASHED: { target: 'dead', actions: ['crashed', 'closeAll'] },
      },
    },
    dead: {
      type: 'final',
      entry: 'exit',
    },
  },
})
