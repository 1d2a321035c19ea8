// The master's control surfaces, put together: the status it keeps
// (src/master/status.ts), the control socket and its commands
// (src/master/control-socket.ts, src/master/control-commands.ts), and
// --metrics-bind (src/master/metrics.ts, loaded only when asked for).
import type { Actor } from 'xstate'
import type { masterMachine, MasterEvent, MasterCommand, Signal } from '../../machines/master.ts'
import { registry, type Settings, type SettingName } from '../config/registry.ts'
import type { Logger } from '../logging/log.ts'
import { acceptQueueLengths } from '../net/accept-queue.ts'
import type { Listener } from '../net/listeners.ts'
import type { ConfigRow, ListenerRow } from '../protocol/control.ts'
import type { WorkerStateMessage } from '../protocol/master-worker.ts'
import { createControlCommands } from './control-commands.ts'
import { NO_CONTROL_SOCKET, openControlSocket, type ControlSocket } from './control-socket.ts'
import type { Inspector } from './inspector.ts'
import type { MetricsServer } from './metrics.ts'
import { gatherAppMetrics } from './app-metrics.ts'
import type { Statsd } from '../net/statsd.ts'
import { createMasterStatus, stateName, type ChartView, type MasterStatus } from './status.ts'

/**
 * How long a scrape waits for the workers' app metrics: a worker that has not
 * answered by then is left out of this scrape (and counted). Well under
 * Prometheus's default scrape timeout of 10 s.
 */
const APP_METRICS_TIMEOUT_MS = 1000
/** How often the workers gauge is set: the StatsD client sends it at its next flush. */
const STATSD_GAUGE_MS = 1000

export interface MasterControlOptions {
  settings: Settings
  sourcesOf: ((settings: Settings) => Readonly<Record<SettingName, string>> | undefined) | undefined
  log: Logger
  actor: Actor<typeof masterMachine>
  pidOf(id: number): number | undefined
  /** With the address as people see it (an inherited one's original). */
  listeners: readonly Listener[]
  /** Puts a signal's event into the master's input stream. */
  signal(name: Signal): void
  /** Puts an event into the master's input stream (the queue worker events take). */
  event(event: MasterEvent): void
  /** --statsd-host: the workers gauge goes here once a second. */
  statsd?: Statsd | undefined
}

export interface MasterControl {
  readonly status: MasterStatus
  readonly socket: ControlSocket
  /** Sends an event into the chart, watching what it does (restarts, reloads). */
  send(event: MasterEvent): void
  /** HUP re-read the settings: `show config` shows these from now on. */
  setSettings(next: Settings): void
  /** --inspector: a worker's own machine took an event (it reports only when the inspector is on). */
  workerState(id: number, message: WorkerStateMessage): void
  close(): void
}

export async function openMasterControl(options: MasterControlOptions): Promise<MasterControl> {
  const { actor, log } = options
  let settings = options.settings
  const status = createMasterStatus()
  const snapshot = (): ChartView => {
    const s = actor.getSnapshot()
    return { state: stateName(s.value), context: s.context, ready: s.hasTag('ready'), draining: s.hasTag('draining') }
  }
  const listeners = async (): Promise<ListenerRow[]> => {
    const shared = options.listeners.filter((l) => !l.reusePort).map((l) => l.fd)
    const queues = await acceptQueueLengths(shared)
    return options.listeners.map((l) => ({
      address: l.address,
      fd: l.reusePort ? null : l.fd,
      backlog: options.settings.backlog,
      queue: l.reusePort ? null : (queues.get(l.fd) ?? null),
    }))
  }
  const config = (): ConfigRow[] =>
    registry
      .filter((s) => !s.invocationOnly)
      .map((s) => {
        const value = (settings as Record<string, unknown>)[s.name]
        return {
          name: s.name,
          value: typeof value === 'function' ? `[function${value.name ? ` ${value.name}` : ''}]` : (value ?? null),
          source: options.sourcesOf?.(settings)?.[s.name as SettingName] ?? 'default',
        }
      })

  // Control commands that wait for an outcome (`reload wait`) watch every event's commands until they have it.
  const watchers = new Set<(commands: readonly MasterCommand[], stopping: boolean) => boolean>()
  const run = createControlCommands({
    snapshot,
    status,
    pidOf: options.pidOf,
    config,
    listeners,
    signal: options.signal,
    event: options.event,
    watch: (step) => void watchers.add(step),
  })
  const socket = settings.noControlSocket
    ? NO_CONTROL_SOCKET
    : await openControlSocket({
        path: settings.controlSocket,
        mode: settings.controlSocketMode,
        warn: log.warning,
        handle: (words) => {
          log.debug(`Control: ${words.join(' ')}`)
          inspector?.note('ctl', words.join(' '))
          return run(words)
        },
      })
  if (socket.path) log.info(`Control socket: ${socket.path}`)

  let metrics: MetricsServer | undefined
  if (settings.metricsPerWorker && settings.metricsBind === undefined)
    log.warning('--metrics-per-worker does nothing without --metrics-bind')
  if (settings.metricsBind !== undefined) {
    const { startMetricsServer } = await import('./metrics.ts')
    metrics = await startMetricsServer(settings.metricsBind, {
      snapshot,
      status,
      pidOf: options.pidOf,
      listeners,
      appMetrics: () => gatherAppMetrics(APP_METRICS_TIMEOUT_MS),
      perWorker: settings.metricsPerWorker,
      warn: log.warning,
    })
    log.info(`Metrics at: ${metrics.address}/metrics (and /healthz, /readyz)`)
  }

  // --inspector (src/master/inspector.ts, loaded only when asked for): the chart's events and commands, live.
  let inspector: Inspector | undefined
  if (settings.inspector !== undefined) {
    const { startInspector } = await import('./inspector.ts')
    inspector = await startInspector(settings.inspector, settings.inspectorAllowRemote, {
      input: {
        settings: { workers: settings.workers, timeout: settings.timeout, gracefulTimeout: settings.gracefulTimeout },
        upgrade: settings.upgrade,
        now: actor.getSnapshot().context.now,
      },
      value: () => actor.getSnapshot().value,
      context: () => actor.getSnapshot().context,
      workers: () => status.workers(actor.getSnapshot().context, options.pidOf),
      signal: options.signal,
      killWorker: (id) => options.event({ type: 'KILL_WORKER', id }),
    })
    log.info(`Inspector at: ${inspector.url}`)
  }

  // gunicorn.workers' meaning: the worker processes the master has, whatever their state.
  const { statsd } = options
  const workersGauge = statsd
    ? setInterval(() => statsd.gauge('workers', actor.getSnapshot().context.workers.length), STATSD_GAUGE_MS)
    : undefined
  workersGauge?.unref()

  // Commands the chart emits while it handles one event, for the status to watch.
  let emitted: MasterCommand[] = []
  actor.on('*', (command) => void emitted.push(command as MasterCommand))

  return {
    status,
    socket,
    send(event) {
      const { context: before, value: from } = actor.getSnapshot()
      emitted = []
      actor.send(event)
      status.observe(event, before, snapshot(), emitted)
      const stopping = !actor.getSnapshot().matches('active')
      for (const step of watchers) if (step(emitted, stopping)) watchers.delete(step)
      inspector?.observe(event, before, from, emitted)
      emitted = []
    },
    setSettings(next) {
      settings = next
    },
    workerState(id, message) {
      inspector?.workerState(id, message.value, message.event)
    },
    close() {
      clearInterval(workersGauge)
      socket.close()
      metrics?.close()
      inspector?.close()
    },
  }
}
