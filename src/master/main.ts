// The master process: the Effect shell around machines/master.ts. It opens
// the listeners, merges every input (signals, the clock, worker exits and
// IPC) into one stream that feeds the actor, and carries out the commands
// the actor emits. Everything it opens is scoped: however the master ends,
// the finalizers close it, in the reverse order of opening.
import type { ChildProcess } from 'node:child_process'
import { accessSync, constants, readFileSync } from 'node:fs'
import { dirname } from 'node:path'
import { isatty } from 'node:tty'
import { setFlagsFromString } from 'node:v8'
import * as Deferred from 'effect/Deferred'
import * as Effect from 'effect/Effect'
import * as Queue from 'effect/Queue'
import * as Schema from 'effect/Schema'
import * as Stream from 'effect/Stream'
import { createActor } from 'xstate'
import { masterMachine, type MasterCommand, type MasterEvent, type Signal } from '../../machines/master.ts'
import { openListeners, type Listener } from '../net/listeners.ts'
import { createLogger, type Logger } from '../logging/log.ts'
import { countingLogLines, createStatsd } from '../net/statsd.ts'
import { closeLogFiles, openMasterLogs, reopenLogFiles } from '../logging/log-file.ts'
import { masterClock, signals, ticks } from './event-sources.ts'
import { reportToLauncher } from './daemon.ts'
import { createPidfile, type Pidfile } from './pidfile.ts'
import { notifyParentReady, reexecRefusal, spawnNewMaster, takeInheritedListeners } from './reexec.ts'
import type { Settings, SettingName } from '../config/registry.ts'
import { createWorkerPool, type WorkerPool } from './worker-pool.ts'
import { VERSION } from '../version.ts'
import { APP_LOAD_ERROR, RUNTIME_ERROR } from '../protocol/exit-codes.ts'
import type { WorkerStateMessage } from '../protocol/master-worker.ts'
import { preloadApp } from '../process/process-settings.ts'
import { giveLogFilesToWorkers, workerSpawnIdentity } from '../process/privileges.ts'
import { reloadRequests } from './reload-watch.ts'
import { chooseBinds } from './socket-activation.ts'
import { withScheme } from '../http/tls.ts'
import { createMasterHooks, type MasterHooks } from './server-hooks.ts'
import { openMasterControl, type MasterControl } from './master-control.ts'
import { createSystemdNotify, followMaster } from './systemd-notify.ts'
import { withoutInitWarning } from './pid1.ts'

/** How often the machine's clock advances (heartbeats, deadlines, back-off). */
const TICK_MS = 100

export interface MasterOptions {
  settings: Settings
  app: string
  log?: Logger
  /** Re-reads the settings on HUP (src/config/sources.ts), against those in force; undefined keeps them. */
  reloadSettings?: (inForce: Settings, log: Logger) => Promise<Settings | undefined>
  /** Where each of these settings' values came from, for `corral ctl show config` (src/config/sources.ts). */
  sourcesOf?: (settings: Settings) => Readonly<Record<SettingName, string>> | undefined
}

// Why a master could not start. Each is said in one line (exitCodeOf).
class LogsUnavailable extends Schema.TaggedError<LogsUnavailable>()('LogsUnavailable', { message: Schema.String }) {}
/** --preload: the app did not load; preloadApp has logged why. */
class AppLoadFailed extends Schema.TaggedError<AppLoadFailed>()('AppLoadFailed', {}) {}
class OnStartingFailed extends Schema.TaggedError<OnStartingFailed>()('OnStartingFailed', {
  message: Schema.String,
}) {}
class ListenFailed extends Schema.TaggedError<ListenFailed>()('ListenFailed', { message: Schema.String }) {}
class PidfileUnwritable extends Schema.TaggedError<PidfileUnwritable>()('PidfileUnwritable', {
  message: Schema.String,
}) {}
/** --metrics-bind could not listen (the control socket only warns: src/master/control-socket.ts). */
class ControlUnavailable extends Schema.TaggedError<ControlUnavailable>()('ControlUnavailable', {
  message: Schema.String,
}) {}
class WorkerIdentityUnknown extends Schema.TaggedError<WorkerIdentityUnknown>()('WorkerIdentityUnknown', {
  message: Schema.String,
}) {}

const messageOf = (err: unknown) => ({ message: err instanceof Error ? err.message : String(err) })

/** Runs a master until it stops; resolves with the process exit code. */
export function runMaster({
  settings,
  app,
  log: givenLog = reportingToLauncher(createLogger({ level: settings.logLevel })),
  reloadSettings,
  sourcesOf,
}: MasterOptions): Promise<number> {
  // --statsd-host (src/net/statsd.ts): the master's log lines by level, and the workers gauge (src/master/master-control.ts).
  const statsd = createStatsd(settings)
  const log = countingLogLines(givenLog, statsd)
  const name = settings.name ?? app
  process.title = `corral: master [${name}]`
  // The master serves no requests: memory matters more here than speed. Left
  // to size its heap for throughput, V8 lets it grow with the garbage of
  // reloads and ticks to several times what is live (the master's RSS rose
  // by tens of MB over 1 000 HUPs with a flat live heap; spec/reliability.md).
  // Workers are processes of their own and keep V8's defaults.
  setFlagsFromString('--optimize-for-size')
  // The settings in force, as the machine's commands say (reloadStarted,
  // reloadAbandoned): the hooks are called from them and a HUP is re-read against them.
  let inForce = settings
  // Server hooks that run in the master (src/master/server-hooks.ts, spec/hooks.md). They
  // run from before the listeners are open, when there is no pool yet and so no worker.
  let pool: WorkerPool | undefined
  const hooks = createMasterHooks({ settings: () => inForce, app, name, log, workers: () => pool?.list() ?? [] })
  // $NOTIFY_SOCKET: systemd hears of readiness, reloads and stops (src/master/systemd-notify.ts).
  const systemd = createSystemdNotify({ log })

  const master = Effect.gen(function* () {
    // Last out: buffered log lines are written once everything else has been said.
    yield* Effect.addFinalizer(() => Effect.promise(() => closeLogFiles()))
    // What StatsD has pending goes out before the master does.
    yield* Effect.addFinalizer(() => Effect.sync(() => statsd?.close()))
    // The error log first, so everything after lands in it (src/logging/log-file.ts).
    yield* Effect.try({ try: () => openMasterLogs(settings), catch: (err) => new LogsUnavailable(messageOf(err)) })
    // onExit (spec/hooks.md), once the workers are gone, the listeners closed and the pidfile removed.
    yield* Effect.addFinalizer(() => Effect.promise(() => hooks.exiting()))
    // Messages to systemd still queued go out before the log closes.
    yield* Effect.addFinalizer(() => Effect.promise(() => systemd.close()))
    // -u/--user: workers open the access log themselves (src/process/privileges.ts).
    giveLogFilesToWorkers(settings)
    log.info(`Starting corral ${VERSION}`)
    if (settings.config !== undefined) log.info(`Config file: ${settings.config}`)
    const noInit = withoutInitWarning()
    if (noInit) log.warning(noInit)
    // --preload: the app is imported here first; one that cannot load stops corral before anything is bound.
    if (settings.preload && !(yield* Effect.promise(() => preloadApp(app, log)))) return yield* new AppLoadFailed()
    // nworkersChanged, then onStarting, before anything is bound.
    yield* Effect.tryPromise({ try: () => hooks.starting(), catch: (err) => new OnStartingFailed(messageOf(err)) })
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
        catch: (err) => new ListenFailed(messageOf(err)),
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
      Effect.try({ try: () => checkedPidfile(settings.pid), catch: (err) => new PidfileUnwritable(messageOf(err)) }),
      (p) => Effect.sync(() => p.remove()),
    )

    const events = yield* Queue.unbounded<MasterEvent>()
    // `corral ctl` commands that are signals' events enter with the signals (src/master/master-control.ts).
    const controlSignals = yield* Queue.unbounded<Signal>()
    const emit = (event: MasterEvent) => void Queue.offerUnsafe(events, event)
    // HUPs whose settings are to be read (the chart's readSettings command).
    const settingsReads = yield* Queue.unbounded<void>()
    const identity = yield* Effect.try({
      try: () => workerSpawnIdentity(settings),
      catch: (err) => new WorkerIdentityUnknown(messageOf(err)),
    })
    const workers = createWorkerPool({
      // --reuse-port: workers bind their own sockets for those addresses (src/net/listeners.ts).
      listenerFds: listeners.filter((l) => !l.reusePort).map((l: Listener) => l.fd),
      worker: {
        app,
        name,
        addresses: listeners.map((l, i) => withScheme(inherited?.[i]?.address ?? l.address, settings)),
        reusePort: listeners.flatMap((l) => (l.reusePort ? [l.reusePort] : [])),
        // --inspector: workers report their own machine's moves; without it they are not asked to (spec/inspector.md).
        ...(settings.inspector !== undefined && { inspector: true }),
      },
      identity,
      emit,
      log,
      report: (id, message) => control.status.report(id, message),
      ...(settings.inspector !== undefined && {
        workerState: (id: number, message: WorkerStateMessage) => control.workerState(id, message),
      }),
    })
    pool = workers
    // Nothing the master started outlives it, however it ends.
    yield* Effect.addFinalizer(() => Effect.sync(workers.killAll))
    process.on('exit', workers.killAll)

    const exitCode = yield* Deferred.make<number>()
    const actor = createActor(masterMachine, {
      input: { settings, upgrade: settings.upgrade, now: masterClock() },
    })
    // The control socket and --metrics-bind: they watch the chart and put signals' events into its stream.
    const control: MasterControl = yield* Effect.acquireRelease(
      Effect.tryPromise({
        try: () =>
          openMasterControl({
            settings,
            sourcesOf,
            log,
            actor,
            pidOf: (id) => workers.list().find((w) => w.id === id)?.pid,
            listeners: listeners.map((l, i) => ({ ...l, address: inherited?.[i]?.address ?? l.address })),
            signal: (signal) => void Queue.offerUnsafe(controlSignals, signal),
            event: emit,
            statsd,
          }),
        catch: (err) => new ControlUnavailable(messageOf(err)),
      }),
      (c) => Effect.sync(() => c.close()),
    )
    const shell: Shell = {
      pool: workers,
      hooks,
      log,
      pidfile,
      adopt: (next) => {
        inForce = next
        control.setSettings(next)
      },
      done: (code) => Deferred.doneUnsafe(exitCode, Effect.succeed(code)),
      // The chart's reexecing.preExec waits for the hook's outcome (src/master/server-hooks.ts).
      readSettings: () => void Queue.offerUnsafe(settingsReads, undefined),
      preExec: () =>
        hooks.preExec((failure) =>
          emit(failure === undefined ? { type: 'PRE_EXEC_DONE' } : { type: 'PRE_EXEC_FAILED', reason: failure }),
        ),
      reexec() {
        pidfile.moveAside()
        control.socket.moveAside()
        newMaster = spawnNewMaster(listeners, emit)
        log.info(`Re-exec: started a new master with pid ${newMaster.pid}`)
      },
    }
    // The machine hands back the settings objects it was given (input, HUP)
    // and makes none (machines/master-workers.ts, MasterSettings): these are
    // this shell's whole Settings, as the commands' type says.
    actor.on('*', (command) => carryOut(command as MasterCommand<Settings>, shell))
    actor.on('restorePidfile', () => control.socket.restore())
    // systemd's notify protocol observes the master's snapshots (spec/deploy.md).
    actor.subscribe(followMaster(systemd))

    // A signal becomes its event at once, with nothing to wait for: signals
    // reach the chart in the order they came. A HUP's settings are read
    // beside the stream (the chart's readSettings command, below).
    // `sent`: by the OS (a kill, a terminal), or by corral itself (ctl, --reload).
    const toEvent = ({ signal, sent }: SignalFrom): MasterEvent<Settings> => {
      log.info(`Handling signal: ${signal.toLowerCase()}`)
      if (signal === 'WINCH') return { type: 'WINCH', fromTerminal: sent === 'os' && inTerminalForeground() }
      // Whether a re-exec can work at all is the shell's to know; the chart decides before entering reexecing.
      if (signal === 'USR2') return { type: 'USR2', refusal: reexecRefusal() }
      return { type: signal }
    }
    // The chart's readSettings: the config file is imported one HUP at a
    // time, in the order asked, off the event stream; each answer is an
    // event (the chart may be stopping by then, and drops it).
    yield* Stream.fromQueue(settingsReads).pipe(
      Stream.mapEffect(() =>
        reloadSettings ? Effect.promise(() => reloadSettings(inForce, log)) : Effect.succeed(undefined),
      ),
      Stream.runForEach((next) => Effect.sync(() => emit({ type: 'SETTINGS_READ', settings: next }))),
      Effect.forkScoped,
    )
    const inputs = Stream.mergeAll(
      [
        // --reload: a change to the app's files is a HUP (src/master/reload-watch.ts).
        // `corral ctl` commands that are signals' events take the same path (src/master/control-commands.ts).
        Stream.mergeAll(
          [
            signals.pipe(Stream.map((signal): SignalFrom => ({ signal, sent: 'os' }))),
            Stream.merge(reloadRequests(settings, app, log), Stream.fromQueue(controlSignals)).pipe(
              Stream.map((signal): SignalFrom => ({ signal, sent: 'corral' })),
            ),
          ],
          { concurrency: 'unbounded' },
        ).pipe(Stream.map(toEvent)),
        ticks(TICK_MS),
        Stream.fromQueue(events),
      ],
      { concurrency: 'unbounded' },
    )
    yield* inputs.pipe(
      Stream.runForEach((event) => Effect.sync(() => control.send(event))),
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
    master.pipe(
      // The one place a failed start becomes an exit code (src/protocol/exit-codes.ts); still in the scope, so the line reaches the log file.
      Effect.catchTags({
        AppLoadFailed: () => Effect.succeed(APP_LOAD_ERROR),
        LogsUnavailable: (err) => failedStart(log, err.message),
        OnStartingFailed: (err) => failedStart(log, err.message),
        ListenFailed: (err) => failedStart(log, err.message),
        PidfileUnwritable: (err) => failedStart(log, err.message),
        WorkerIdentityUnknown: (err) => failedStart(log, err.message),
        ControlUnavailable: (err) => failedStart(log, err.message),
      }),
      Effect.scoped,
    ),
  )
}

const failedStart = (log: Logger, message: string) =>
  Effect.sync(() => {
    log.error(message)
    return RUNTIME_ERROR
  })

interface SignalFrom {
  signal: Signal
  sent: 'os' | 'corral'
}

interface Shell {
  pool: WorkerPool
  hooks: MasterHooks
  log: Logger
  pidfile: Pidfile
  /** The settings in force from now on. */
  adopt: (settings: Settings) => void
  readSettings: () => void
  preExec: () => void
  reexec: () => void
  done: (code: number) => void
}

function carryOut(
  command: MasterCommand<Settings>,
  { pool, hooks, log, pidfile, adopt, readSettings, preExec, reexec, done }: Shell,
): void {
  switch (command.type) {
    case 'spawnWorker': {
      const { id, generation, settings, role } = command
      return hooks.spawning({ id, generation }, () => pool.spawnWorker(id, generation, settings, role))
    }
    case 'promoteSpare':
      return pool.promoteSpare(command.id)
    case 'stopWorker':
      return hooks.forWorker(command.id, () => pool.stopWorker(command.id, command.mode))
    case 'killWorker':
      return hooks.forWorker(command.id, () => pool.killWorker(command.id))
    case 'abortWorker':
      return hooks.forWorker(command.id, () => void pool.abortWorker(command.id, hooks.aborting()))
    case 'workerExited': {
      const { id, pid, generation, code, signal, cause } = command
      return hooks.workerExited({ id, pid, generation, exitCode: code, signal, cause })
    }
    case 'workersChanged':
      return hooks.workersChanged(command.workers, command.previous)
    case 'reloadStarted':
      adopt(command.settings)
      return hooks.reloadStarted()
    case 'reloadAbandoned':
      return adopt(command.settings)
    case 'reloadCompleted':
      // Only watched: `corral reload` waits for it (src/master/control-commands.ts).
      return
    case 'reopenLogs':
      log.info('Reopening log files')
      reopenLogFiles()
      return pool.broadcast({ t: 'reopen' })
    case 'readSettings':
      return readSettings()
    case 'preExec':
      return preExec()
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
 * Whether a terminal's resize could have sent a WINCH: the kernel sends it to
 * the foreground process group of the resized terminal, so only a master
 * that has a controlling terminal and is in its foreground group can get one
 * that way (under `npx corral` or `npm start` it is not its group's leader,
 * which is why the group leader test gunicorn and old unicorn use is not
 * enough). -D detaches (a session of its own), and services, containers
 * without a tty and `corral … &` have no terminal or are in its background:
 * their WINCH is an operator's. Without /proc, whether stdin is a terminal
 * (unicorn's rule today).
 */
function inTerminalForeground(): boolean {
  try {
    const stat = readFileSync('/proc/self/stat', 'utf8')
    // After the command's ")": state ppid pgrp session tty_nr tpgid …
    const [, , pgrp, , ttyNr, tpgid] = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return Number(ttyNr) !== 0 && tpgid === pgrp
  } catch {
    return isatty(0)
  }
}
