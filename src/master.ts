// The master process: the Effect shell around machines/master.ts. It opens
// the listeners, merges every input (signals, the clock, worker exits and
// IPC) into one stream that feeds the actor, and carries out the commands
// the actor emits. Resources are scoped so an interrupted master cleans up.
import { unlinkSync, writeFileSync } from 'node:fs'
import * as Deferred from 'effect/Deferred'
import * as Effect from 'effect/Effect'
import * as Queue from 'effect/Queue'
import * as Stream from 'effect/Stream'
import { createActor } from 'xstate'
import { masterMachine, type MasterCommand, type MasterEvent } from '../machines/master.ts'
import { openListeners, type Listener } from './listeners.ts'
import { createLogger, type Logger } from './log.ts'
import { signals, ticks } from './events.ts'
import { parseBind, type Settings } from './settings.ts'
import { createWorkerPool, type WorkerPool } from './worker-pool.ts'
import { VERSION } from './version.ts'

/** How often the machine's clock advances (heartbeats, deadlines, back-off). */
const TICK_MS = 100

export interface MasterOptions {
  settings: Settings
  app: string
  log?: Logger
}

/** Runs a master until it stops; resolves with the process exit code. */
export function runMaster({ settings, app, log = createLogger({ level: settings.logLevel }) }: MasterOptions): Promise<number> {
  const name = settings.name ?? app
  process.title = `corral: master [${name}]`

  const program = Effect.gen(function* () {
    log.info(`Starting corral ${VERSION}`)
    const listeners = yield* Effect.acquireRelease(
      Effect.try({ try: () => openListeners(settings.bind.map(parseBind)), catch: startupError }),
      (ls) => Effect.sync(() => ls.forEach((l) => l.close())),
    )
    for (const l of listeners) log.info(`Listening at: ${l.address} (${process.pid})`)
    if (settings.pid) yield* pidfile(settings.pid)

    const events = yield* Queue.unbounded<MasterEvent>()
    const emit = (event: MasterEvent) => void Queue.offerUnsafe(events, event)
    const pool = createWorkerPool({
      listenerFds: listeners.map((l: Listener) => l.fd),
      worker: { app, name, settings },
      emit,
      log,
    })
    // Nothing the master started outlives it, however it ends.
    yield* Effect.addFinalizer(() => Effect.sync(pool.killAll))
    process.on('exit', pool.killAll)

    const exitCode = yield* Deferred.make<number>()
    const actor = createActor(masterMachine, {
      input: { workers: settings.workers, timeoutMs: settings.timeout * 1000, gracefulMs: settings.gracefulTimeout * 1000, now: Date.now() },
    })
    actor.on('*', (command) => carryOut(command as MasterCommand, { pool, log, emit, done: (code) => Deferred.doneUnsafe(exitCode, Effect.succeed(code)) }))

    const inputs = Stream.mergeAll(
      [
        signals.pipe(
          Stream.map((signal): MasterEvent => {
            log.info(`Handling signal: ${signal.toLowerCase()}`)
            return { type: 'SIGNAL', signal }
          }),
        ),
        ticks(TICK_MS),
        Stream.fromQueue(events),
      ],
      { concurrency: 'unbounded' },
    )
    yield* inputs.pipe(
      Stream.runForEach((event) => Effect.sync(() => actor.send(event))),
      Effect.forkScoped,
    )
    actor.start()
    const code = yield* Deferred.await(exitCode)
    log.info(code === 0 ? 'Shutting down: Master' : `Shutting down: Master (exit code ${code})`)
    return code
  })

  return Effect.runPromise(
    Effect.scoped(program).pipe(
      Effect.catch((err: StartupError) =>
        Effect.sync(() => {
          log.error(err.message)
          return EXIT_RUNTIME_ERROR
        }),
      ),
    ),
  )
}

/** The master could not start: no listener, no pidfile. Said in one line. */
class StartupError extends Error {}
const startupError = (err: unknown) => new StartupError(err instanceof Error ? err.message : String(err))
const EXIT_RUNTIME_ERROR = 1

interface Shell {
  pool: WorkerPool
  log: Logger
  emit: (event: MasterEvent) => void
  done: (code: number) => void
}

function carryOut(command: MasterCommand, { pool, log, emit, done }: Shell): void {
  switch (command.type) {
    case 'spawnWorker':
      return pool.spawnWorker(command.id)
    case 'stopWorker':
      return pool.stopWorker(command.id, command.mode)
    case 'killWorker':
      return pool.killWorker(command.id)
    case 'abortWorker':
      return void pool.abortWorker(command.id)
    case 'reopenLogs':
      log.info('Reopening log files')
      return pool.broadcast({ t: 'reopen' })
    case 'reexec':
      // The upgrade protocol is modelled; the shell half comes with USR2 support.
      return emit({ type: 'REEXEC_FAILED', reason: 'USR2 re-exec is not supported yet' })
    case 'ready':
      return log.info(`Ready: ${command.workers} worker(s) serving`)
    case 'log':
      return log[command.level](command.message)
    case 'exit':
      return done(command.code)
  }
}

/** The master's pid, for as long as this master runs. */
const pidfile = (path: string) =>
  Effect.acquireRelease(
    Effect.try({ try: () => writeFileSync(path, `${process.pid}\n`), catch: (err) => startupError(new Error(`Can't write pidfile: ${(err as Error).message}`)) }),
    () =>
      Effect.sync(() => {
        try {
          unlinkSync(path)
        } catch {
          // Already gone: someone else's business, not a reason to fail a stop.
        }
      }),
  )
