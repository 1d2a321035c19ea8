// The master's control surfaces, put together: the control socket and its
// commands (src/master/control-socket.ts, src/master/control-commands.ts),
// --metrics-bind (src/master/metrics.ts) and --inspector
// (src/master/inspector.ts), the last two loaded only when asked for. They
// read the chart through its one observation path (src/master/parts/chart.ts)
// and the status (src/master/status.ts), and put events into its input stream.
import type { MasterCommand } from '../../machines/master.ts'
import { registry, type Settings, type SettingName } from '../config/registry.ts'
import type { Logger } from '../logging/log.ts'
import { acceptQueueLengths } from '../net/accept-queue.ts'
import type { Listener } from '../net/listeners.ts'
import type { ConfigRow, ListenerRow } from '../protocol/control.ts'
import type { WorkerStateMessage } from '../protocol/master-worker.ts'
import { createControlCommands, type ControlView } from './control-commands.ts'
import { NO_CONTROL_SOCKET, openControlSocket, type ControlSocket } from './control-socket.ts'
import type { Inspector } from './inspector.ts'
import type { MetricsServer } from './metrics.ts'
import { gatherAppMetrics } from './app-metrics.ts'
import type { Statsd } from '../net/statsd.ts'
import type { MasterStatus } from './status.ts'
import type { ChartShape } from './parts/chart.ts'

/**
 * How long a scrape waits for the workers' app metrics: a worker that has not
 * answered by then is left out of this scrape (and counted). Well under
 * Prometheus's default scrape timeout of 10 s.
 */
const APP_METRICS_TIMEOUT_MS = 1000
/** How often the workers gauge is set: the StatsD client sends it at its next flush. */
const STATSD_GAUGE_MS = 1000

export interface MasterControlOptions {
  /** The settings the master started with: the sockets and servers opened here follow them. */
  settings: Settings
  /** The settings in force now (a HUP changes them): `show config` shows these. */
  inForce(): Settings
  sourcesOf: ((settings: Settings) => Readonly<Record<SettingName, string>> | undefined) | undefined
  log: Logger
  /** The chart: its view, its steps, and the input stream its events and signals go into. */
  chart: Pick<ChartShape, 'actor' | 'view' | 'observe' | 'signal' | 'emit'>
  status: MasterStatus
  /** --inspector: calls the listener with each worker's own machine move. */
  onWorkerState(listener: (id: number, message: WorkerStateMessage) => void): void
  pidOf(id: number): number | undefined
  /** With the address as people see it (an inherited one's original). */
  listeners: readonly Listener[]
  /** --statsd-host: the workers gauge goes here once a second. */
  statsd?: Statsd | undefined
  /** `show dirty`, `dirty add|remove` (src/dirty/pool.ts). */
  dirty?: ControlView['dirty']
}

export interface MasterControl {
  readonly socket: ControlSocket
  close(): void
}

export async function openMasterControl(options: MasterControlOptions): Promise<MasterControl> {
  const { chart, status, log, settings } = options
  const listeners = async (): Promise<ListenerRow[]> => {
    const shared = options.listeners.filter((l) => !l.reusePort).map((l) => l.fd)
    const queues = await acceptQueueLengths(shared)
    return options.listeners.map((l) => ({
      address: l.address,
      fd: l.reusePort ? null : l.fd,
      backlog: settings.backlog,
      queue: l.reusePort ? null : (queues.get(l.fd) ?? null),
    }))
  }
  const config = (): ConfigRow[] =>
    registry
      .filter((s) => !s.invocationOnly)
      .map((s) => {
        const inForce = options.inForce()
        const value = (inForce as Record<string, unknown>)[s.name]
        return {
          name: s.name,
          value: typeof value === 'function' ? `[function${value.name ? ` ${value.name}` : ''}]` : (value ?? null),
          source: options.sourcesOf?.(inForce)?.[s.name as SettingName] ?? 'default',
        }
      })

  // Control commands that wait for an outcome (`reload wait`) watch every event's commands until they have it.
  const watchers = new Set<(commands: readonly MasterCommand[], stopping: boolean) => boolean>()
  chart.observe(({ commands, after }) => {
    for (const step of watchers) if (step(commands, after.draining)) watchers.delete(step)
  })
  const run = createControlCommands({
    snapshot: chart.view,
    status,
    pidOf: options.pidOf,
    config,
    listeners,
    signal: chart.signal,
    event: chart.emit,
    watch: (step) => void watchers.add(step),
    dirty: options.dirty,
  })
  // Opened after the socket, which notes its commands in it from the first one on (none before it opens).
  let inspector: Inspector | undefined
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
      snapshot: chart.view,
      status,
      pidOf: options.pidOf,
      listeners,
      appMetrics: () => gatherAppMetrics(APP_METRICS_TIMEOUT_MS),
      perWorker: settings.metricsPerWorker,
      warn: log.warning,
      dirty: options.dirty,
    })
    log.info(`Metrics at: ${metrics.address}/metrics (and /healthz, /readyz)`)
  }

  // --inspector (src/master/inspector.ts, loaded only when asked for): the chart's events and commands, live.
  if (settings.inspector !== undefined) {
    const { startInspector } = await import('./inspector.ts')
    inspector = await startInspector(settings.inspector, settings.inspectorAllowRemote, {
      input: {
        settings: { workers: settings.workers, timeout: settings.timeout, gracefulTimeout: settings.gracefulTimeout },
        upgrade: settings.upgrade,
        now: chart.view().context.now,
      },
      value: () => chart.actor.getSnapshot().value,
      workers: () => status.workers(chart.view().context, options.pidOf),
      signal: chart.signal,
      killWorker: (id) => chart.emit({ type: 'KILL_WORKER', id }),
    })
    log.info(`Inspector at: ${inspector.url}`)
    chart.observe((step) => inspector?.observe(step))
    options.onWorkerState((id, message) => inspector?.workerState(id, message.value, message.event))
  }

  // gunicorn.workers' meaning: the worker processes the master has, whatever their state.
  const { statsd } = options
  const workersGauge = statsd
    ? setInterval(() => statsd.gauge('workers', chart.view().context.workers.length), STATSD_GAUGE_MS)
    : undefined
  workersGauge?.unref()

  return {
    socket,
    close() {
      clearInterval(workersGauge)
      socket.close()
      metrics?.close()
      inspector?.close()
    },
  }
}
