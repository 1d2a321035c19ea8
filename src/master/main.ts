// The master process: the Effect shell around machines/master.ts. It opens
// the listeners, merges every input (signals, the clock, worker exits and
// IPC) into one stream that feeds the actor, and carries out the commands
// the actor emits. Resources are scoped so an interrupted master cleans up.
import type { ChildProcess } from 'node:child_process'
import { accessSync, constants, readFileSync } from 'node:fs'
import { dirname } from 'node:path'
import * as Deferred from 'effect/Deferred'
import * as Effect from 'effect/Effect'
import * as Queue from 'effect/Queue'
import * as Stream from 'effect/Stream'
import { createActor } from 'xstate'
import { masterMachine, type MasterCommand, type MasterEvent } from '../../machines/master.ts'
import { openListeners, type Listener } from '../net/listeners.ts'
import { createLogger, type Logger } from '../logging/log.ts'
import { closeLogFiles, openMasterLogs, reopenLogFiles } from '../logging/log-file.ts'
import { signals, ticks } from './event-sources.ts'
import { reportToLauncher } from './daemon.ts'
import { createPidfile, type Pidfile } from './pidfile.ts'
import { notifyParentReady, reexecRefusal, spawnNewMaster, takeInheritedListeners } from './reexec.ts'
import type { Settings } from '../config/registry.ts'
import { createWorkerPool, type WorkerPool } from './worker-pool.ts'
import { VERSION } from '../version.ts'
import { APP_LOAD_ERROR } from '../../machines/master-workers.ts'
import { preloadApp } from '../process/process-settings.ts'
import { giveLogFilesToWorkers } from '../process/privileges.ts'
import { reloadRequests } from './reload-watch.ts'
import { chooseBinds } from './socket-activation.ts'
import { withScheme } from '../http/tls.ts'
import { createMasterHooks } from '../hooks/master-hooks.ts'
import { createSystemdNotify, followMaster } from './systemd-notify.ts'
import { withoutInitWarning } from './pid1.ts'

/** How often the machine's clock advances (heartbeats, deadlines, back-off). */
const TICK_MS = 100

export interface MasterOptions {
  settings: Settings
  app: string
  log?: Logger
  /** Re-reads the settings on HUP (src/config/sources.ts); undefined keeps the ones in force. */
  reloadSettings?: (log: Logger) => Promise<Settings | undefined>
}

/** Runs a master until it stops; resolves with the process exit code. */
export function runMaster({
  settings,
  app,
  log = reportingToLauncher(createLogger({ level: settings.logLevel })),
  reloadSettings,
}: MasterOptions): Promise<number> {
  const name = settings.name ?? app
  process.title = `corral: master [${name}]`
  // Server hooks that run in the master (src/hooks/master-hooks.ts, spec/hooks.md).
  const hooks = createMasterHooks({ settings, app, name, log })
  // $NOTIFY_SOCKET: systemd hears of readiness, reloads and stops (src/master/systemd-notify.ts).
  const systemd = createSystemdNotify({ log })

  const program = Effect.gen(function* () {
    // The error log first, so everything after lands in it (src/logging/log-file.ts).
    yield* Effect.try({ try: () => openMasterLogs(settings), catch: startupError })
    // -u/--user: workers open the access log themselves (src/process/privileges.ts).
    giveLogFilesToWorkers(settings)
    log.info(`Starting corral ${VERSION}`)
    if (settings.config !== undefined) log.info(`Config file: ${settings.config}`)
    const noInit = withoutInitWarning()
    if (noInit) log.warning(noInit)
    // --preload: the app is imported here first; one that cannot load stops corral before anything is bound.
    if (settings.preload && !(yield* Effect.promise(() => preloadApp(app, log)))) return APP_LOAD_ERROR
    // nworkersChanged, then onStarting, before anything is bound: a failing onStarting stops corral (exit 1).
    yield* Effect.tryPromise({ try: () => hooks.starting(), catch: startupError })
    // A master started by USR2 serves the sockets its parent handed it and binds nothing;
    // one started by systemd serves systemd's (src/master/socket-activation.ts).
    const inherited = takeInheritedListeners()
    const binds = chooseBinds(settings, inherited, log)
    // A new master started by USR2 may still be serving these sockets when
    // this one exits: then a unix socket's path must stay.
    let newMaster: ChildProcess | undefined
    const listeners = yield* Effect.acquireRelease(
      Effect.try({
        try: () => openListeners(binds, { backlog: settings.backlog, reusePort: settings.reusePort }),
        catch: startupError,
      }),
      (ls) =>
        Effect.sync(() => {
          for (const l of ls) l.close({ unlink: !isAlive(newMaster) })
        }),
    )
    for (const [i, l] of listeners.entries()) {
      const perWorker = l.reusePort ? ' (a socket per worker: --reuse-port)' : ''
      log.info(
        `Listening at: ${withScheme(inherited?.[i]?.address ?? l.address, settings)} (${process.pid})${perWorker}`,
      )
    }
    if (inherited) log.info(`Took over ${inherited.length} listener(s) from the previous master`)
    const pidfile = yield* Effect.acquireRelease(
      Effect.try({ try: () => checkedPidfile(settings.pid), catch: startupError }),
      (p) => Effect.sync(() => p.remove()),
    )

    const events = yield* Queue.unbounded<MasterEvent>()
    const emit = (event: MasterEvent) => void Queue.offerUnsafe(events, event)
    const pool = hooks.wrapPool(
      createWorkerPool({
        // --reuse-port: workers bind their own sockets for those addresses (src/net/listeners.ts).
        listenerFds: listeners.filter((l) => !l.reusePort).map((l: Listener) => l.fd),
        worker: { app, name, settings, reusePort: listeners.flatMap((l) => (l.reusePort ? [l.reusePort] : [])) },
        emit: hooks.observe(emit),
        log,
      }),
    )
    // Nothing the master started outlives it, however it ends.
    yield* Effect.addFinalizer(() => Effect.sync(pool.killAll))
    process.on('exit', pool.killAll)

    const exitCode = yield* Deferred.make<number>()
    const actor = createActor(masterMachine, {
      // The number of workers and the start of each reload, for the hooks.
      inspect: hooks.inspect,
      input: {
        workers: settings.workers,
        timeoutMs: settings.timeout * 1000,
        gracefulMs: settings.gracefulTimeout * 1000,
        upgrade: settings.upgrade,
        now: Date.now(),
      },
    })
    const shell: Shell = {
      pool,
      log,
      emit,
      pidfile,
      done: (code) => Deferred.doneUnsafe(exitCode, Effect.succeed(code)),
      reexec() {
        const refusal = reexecRefusal()
        if (refusal) return emit({ type: 'REEXEC_FAILED', reason: refusal })
        // preExec first, when set (src/hooks/master-hooks.ts).
        hooks.beforeReexec(() => {
          pidfile.moveAside()
          newMaster = spawnNewMaster(listeners, emit)
          log.info(`Re-exec: started a new master with pid ${newMaster.pid}`)
        })
      },
    }
    actor.on('*', (command) => carryOut(command as MasterCommand, shell))
    actor.subscribe(followMaster(systemd))

    const inputs = Stream.mergeAll(
      [
        // --reload: a change to the app's files is a HUP (src/master/reload-watch.ts).
        Stream.merge(signals, reloadRequests(settings, app, log)).pipe(
          Stream.map((signal): MasterEvent => {
            log.info(`Handling signal: ${signal.toLowerCase()}`)
            return signal === 'WINCH'
              ? { type: 'SIGNAL', signal, daemonized: isDaemonized() }
              : { type: 'SIGNAL', signal }
          }),
          // HUP: new workers get the re-read settings, swapped before the machine starts them.
          Stream.tap((event) =>
            event.type === 'SIGNAL' && event.signal === 'HUP' && reloadSettings
              ? Effect.promise(() => reloadSettings(log)).pipe(
                  // biome-ignore lint/suspicious/useIterableCallbackReturn: Effect.map, not Array.prototype.map
                  Effect.map((next) => {
                    if (next) {
                      pool.setSettings(next)
                      // Sent ahead of the HUP, so the generation it starts has the new shape.
                      actor.send({
                        type: 'SETTINGS',
                        workers: next.workers,
                        timeoutMs: next.timeout * 1000,
                        gracefulMs: next.gracefulTimeout * 1000,
                      })
                    }
                  }),
                )
              : Effect.void,
          ),
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
    // whenReady: the listeners are bound; the machine spawns the first workers once it returns.
    yield* Effect.promise(() => hooks.ready(listeners.map((l, i) => inherited?.[i]?.address ?? l.address)))
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
  ).then(async (code) => {
    // onExit (src/hooks/master-hooks.ts); then buffered log lines are written before the process exits.
    await hooks.exiting()
    await systemd.close()
    await closeLogFiles()
    return code
  })
}

/** The master could not start: no listener, no pidfile. Said in one line. */
class StartupError extends Error {}
const startupError = (err: unknown) => new StartupError(err instanceof Error ? err.message : String(err))
const EXIT_RUNTIME_ERROR = 1

interface Shell {
  pool: WorkerPool
  log: Logger
  emit: (event: MasterEvent) => void
  pidfile: Pidfile
  reexec: () => void
  done: (code: number) => void
}

function carryOut(command: MasterCommand, { pool, log, pidfile, reexec, done }: Shell): void {
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
      reopenLogFiles()
      return pool.broadcast({ t: 'reopen' })
    case 'reexec':
      return reexec()
    case 'restorePidfile':
      return pidfile.restore()
    case 'ready':
      // The pidfile names a master that serves: an upgrade (or -D) waiting
      // for it knows the new master is ready.
      pidfile.write()
      log.info(`Ready: ${command.workers} worker(s) serving`)
      return notifyParentReady()
    case 'log':
      return log[command.level](command.message)
    case 'exit':
      return done(command.code)
  }
}

/** A launcher waiting for this master (-D) hears why it failed, if it fails. */
function reportingToLauncher(log: Logger): Logger {
  return {
    ...log,
    error: (msg) => {
      log.error(msg)
      reportToLauncher(msg)
    },
    critical: (msg) => {
      log.critical(msg)
      reportToLauncher(msg)
    },
  }
}

/** A pidfile whose directory we can write, checked now rather than once serving. */
function checkedPidfile(path: string | undefined): Pidfile {
  if (path !== undefined) {
    try {
      accessSync(dirname(path), constants.W_OK)
    } catch (err) {
      throw new Error(`Can't write pidfile ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`)
    }
  }
  return createPidfile(path)
}

const isAlive = (child: ChildProcess | undefined) =>
  child !== undefined && child.exitCode === null && child.signalCode === null

/**
 * Daemonized in the classic sense, as gunicorn decides it for WINCH: started
 * with -D, adopted by init, or not leading its process group (a service
 * manager, a script, a re-exec child). A terminal sends WINCH to its
 * foreground group on every resize, so a master in the foreground ignores it.
 */
function isDaemonized(): boolean {
  if (process.env.CORRAL_DAEMONIZED === '1' || process.ppid === 1) return true
  try {
    const stat = readFileSync('/proc/self/stat', 'utf8')
    const pgrp = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2])
    return pgrp !== process.pid
  } catch {
    return false
  }
}
