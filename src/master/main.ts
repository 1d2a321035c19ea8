// The master process: the Effect shell around machines/master.ts, as a list
// of parts (src/master/parts/), each an Effect service or layer that opens
// what it holds and closes it when the master ends. They start in the order
// listed, each after those it reads, and close in the reverse order: the
// workers are gone before the pidfile and the listeners, onExit runs after
// all three, and the log closes last of all. spec/architecture.md says how to
// add a part.
import { setFlagsFromString } from 'node:v8'
import * as Deferred from 'effect/Deferred'
import * as Effect from 'effect/Effect'
import * as Layer from 'effect/Layer'
import type { Settings, SettingName } from '../config/registry.ts'
import type { SettingsReloader } from '../config/reload.ts'
import { closeLogFiles, openMasterLogs } from '../logging/log-file.ts'
import { createLogger, type Logger } from '../logging/log.ts'
import { countingLogLines, createStatsd } from '../net/statsd.ts'
import { giveLogFilesToWorkers } from '../process/privileges.ts'
import { APP_LOAD_ERROR, RUNTIME_ERROR } from '../protocol/exit-codes.ts'
import { VERSION } from '../version.ts'
import { reportToLauncher } from './daemon.ts'
import { Chart } from './parts/chart.ts'
import { commandsLayer } from './parts/commands.ts'
import { MasterConfig, masterConfig } from './parts/config.ts'
import { Control } from './parts/control.ts'
import { Hooks } from './parts/hooks.ts'
import { inputsLayer } from './parts/inputs.ts'
import { Listeners } from './parts/listeners.ts'
import { Pidfile } from './parts/pidfile.ts'
import { Pool } from './parts/pool.ts'
import { startFailed } from './parts/start-failed.ts'
import { Status } from './parts/status.ts'
import { stashLayer } from './parts/stash.ts'
import { Dirty } from './parts/dirty.ts'
import { ChildIdentity } from './parts/identity.ts'
import { Systemd, systemdFollowsChart } from './parts/systemd.ts'
import { withoutInitWarning } from './pid1.ts'

export interface MasterOptions {
  settings: Settings
  app: string
  log?: Logger
  /** Re-reads and checks the settings on HUP (src/config/reload.ts), against those in force. */
  reloadSettings?: SettingsReloader
  /** Where each of these settings' values came from, for `corral ctl show config` (src/config/sources.ts). */
  sourcesOf?: (settings: Settings) => Readonly<Record<SettingName, string>> | undefined
}

/** `next` starts once `parts` have, and can read them; it stops before they do. */
const then =
  <A, E2, R2>(next: Layer.Layer<A, E2, R2>) =>
  <B, E1, R1>(parts: Layer.Layer<B, E1, R1>) =>
    next.pipe(Layer.provideMerge(parts))

/**
 * The master's parts, in the order they start. A new part is a service or
 * layer in src/master/parts/ and one line here, after the parts it reads.
 */
const parts = Systemd.layer.pipe(
  then(Hooks.layer),
  then(Listeners.layer),
  then(Pidfile.layer),
  then(ChildIdentity.layer),
  // After --preload, onStarting and the binds: its input holds the clock the first workers' heartbeats start from.
  then(Chart.layer),
  then(systemdFollowsChart),
  then(Status.layer),
  then(stashLayer),
  // Before the HTTP workers, so it is there for their first calls, and stopped after them.
  then(Dirty.layer),
  then(Pool.layer),
  then(Control.layer),
  then(commandsLayer),
  then(inputsLayer),
)

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
  const config = masterConfig({ settings, app, name: settings.name ?? app, log, statsd, reloadSettings, sourcesOf })
  process.title = `corral: master [${config.name}]`
  // The master serves no requests: memory matters more here than speed. Left
  // to size its heap for throughput, V8 lets it grow with the garbage of
  // reloads and ticks to several times what is live (the master's RSS rose
  // by tens of MB over 1 000 HUPs with a flat live heap; spec/reliability.md).
  // Workers are processes of their own and keep V8's defaults.
  setFlagsFromString('--optimize-for-size')

  // Once every part has started: whenReady (the listeners are bound), then the chart, which spawns the first workers.
  const serve = Effect.gen(function* () {
    const hooks = yield* Hooks
    const listeners = yield* Listeners
    const chart = yield* Chart
    yield* Effect.promise(() => hooks.ready(listeners.all.map((l) => l.address)))
    chart.actor.start()
    const code = yield* Deferred.await(chart.exitCode)
    log.info(code === 0 ? 'Shutting down: Master' : `Shutting down: Master (exit code ${code})`)
    return code
  })

  // The log is where a failed start is said: it opens before the parts and
  // closes after them, once the exit code is known.
  const master = Effect.gen(function* () {
    // Last out: buffered log lines are written once everything else has been said.
    yield* Effect.addFinalizer(() => Effect.promise(() => closeLogFiles()))
    // What StatsD has pending goes out before the master does.
    yield* Effect.addFinalizer(() => Effect.sync(() => statsd?.close()))
    // The error log first, so everything after lands in it (src/logging/log-file.ts).
    yield* Effect.try({ try: () => openMasterLogs(settings), catch: startFailed })
    // -u/--user: workers open the access log themselves (src/process/privileges.ts).
    giveLogFilesToWorkers(settings)
    log.info(`Starting corral ${VERSION}`)
    if (settings.config !== undefined) log.info(`Config file: ${settings.config}`)
    const noInit = withoutInitWarning()
    if (noInit) log.warning(noInit)
    return yield* serve.pipe(Effect.provide(parts.pipe(Layer.provide(Layer.succeed(MasterConfig, config)))))
  })

  return Effect.runPromise(
    master.pipe(
      // The one place a failed start becomes an exit code (src/protocol/exit-codes.ts); still in the scope, so the line reaches the log file.
      Effect.catchTags({
        AppLoadFailed: () => Effect.succeed(APP_LOAD_ERROR),
        StartFailed: (err) =>
          Effect.sync(() => {
            log.error(err.message)
            return RUNTIME_ERROR
          }),
      }),
      Effect.scoped,
    ),
  )
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
