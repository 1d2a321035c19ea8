// --metrics-bind (spec/metrics.md): Prometheus text at /metrics, and
// /healthz and /readyz for load balancers and probes, served by the master.
// Every value is read when scraped, from the chart's snapshot and what the
// workers last reported (src/master/status.ts): nothing is counted here, and
// nothing of this runs per request. Loaded only when --metrics-bind is given,
// so a master without it does not carry prom-client.
import type { IncomingMessage, ServerResponse } from 'node:http'
import { corralServers } from '../http/app-server.ts'
import {
  AggregatorRegistry,
  collectDefaultMetrics,
  Counter,
  Gauge,
  Registry,
  type MetricObjectWithValues,
  type MetricValue,
} from 'prom-client'
import { workerState } from '../../machines/master-workers.ts'
import { parseBind } from '../net/binds.ts'
import { RESTART_REASONS, STATUS_CLASSES, type ListenerRow } from '../protocol/control.ts'
import { DURATION_BUCKETS } from '../protocol/master-worker.ts'
import type { ChartView, MasterStatus } from './status.ts'
import type { AppMetricsGathered } from './app-metrics.ts'
import { registerDirtyMetrics, type DirtyMetricsSource } from '../dirty/metrics.ts'

export interface MetricsSource {
  snapshot(): ChartView
  status: MasterStatus
  pidOf(id: number): number | undefined
  listeners(): Promise<ListenerRow[]>
  /** Every live worker's app prom-client registry, as far as they answered in time (src/master/app-metrics.ts). */
  appMetrics(): Promise<AppMetricsGathered>
  /** --metrics-per-worker: corral_worker_* series, one per live worker. */
  perWorker: boolean
  /** Says what went wrong with the app's metrics (said once per kind of trouble). */
  warn(message: string): void
  /** The dirty pool's workers and calls (src/dirty/metrics.ts). */
  dirty?: DirtyMetricsSource | undefined
}

export interface MetricsServer {
  /** Where it listens, as `http://HOST:PORT` or `unix:PATH`. */
  readonly address: string
  close(): void
}

const WORKER_STATES = ['booting', 'running', 'stopping', 'killed', 'standby'] as const

function createMetricsRegistry(source: MetricsSource, appMetricsMissed: () => number): Registry {
  const registry = new Registry()
  // The master's own process metrics (CPU, RSS, event-loop lag, …), under prom-client's usual names.
  collectDefaultMetrics({ register: registry })
  new Gauge({
    name: 'corral_workers',
    help: 'Worker processes, by the state the master knows them in.',
    labelNames: ['state'],
    registers: [registry],
    collect() {
      const { context } = source.snapshot()
      for (const state of WORKER_STATES)
        this.set({ state }, context.workers.filter((w) => workerState(w) === state).length)
    },
  })
  new Counter({
    name: 'corral_worker_restarts_total',
    help: 'Workers replaced, by reason: crash, timeout, max-requests, max-memory, reload.',
    labelNames: ['reason'],
    registers: [registry],
    collect() {
      const { restarts } = source.status.stats()
      this.reset()
      for (const reason of RESTART_REASONS) this.inc({ reason }, restarts[reason])
    },
  })
  new Counter({
    name: 'corral_requests_total',
    help: 'Requests answered, by status class (1xx … 5xx), counted by the workers and reported about once a second.',
    labelNames: ['code'],
    registers: [registry],
    collect() {
      const { byClass } = source.status.totals()
      this.reset()
      for (const [i, code] of STATUS_CLASSES.entries()) this.inc({ code }, byClass[i] ?? 0)
    },
  })
  registry.registerMetric(durationHistogram(source))
  if (source.dirty) registerDirtyMetrics(registry, source.dirty)
  new Gauge({
    name: 'corral_requests_in_flight',
    help: 'Requests the workers were handling at their last report.',
    registers: [registry],
    collect() {
      this.set(source.status.stats().requestsInFlight)
    },
  })
  new Gauge({
    name: 'corral_connections',
    help: 'Open client connections of all workers at their last report.',
    registers: [registry],
    collect() {
      this.set(source.status.stats().connections)
    },
  })
  new Gauge({
    name: 'corral_listen_queue_length',
    help: "Connections waiting in a listening socket's accept queue for a worker to accept them.",
    labelNames: ['listener'],
    registers: [registry],
    async collect() {
      this.reset()
      for (const l of await source.listeners()) if (l.queue !== null) this.set({ listener: l.address }, l.queue)
    },
  })
  new Counter({
    name: 'corral_reloads_total',
    help: 'Reloads started (HUP, `corral ctl reload`, --reload).',
    registers: [registry],
    collect() {
      this.reset()
      this.inc(source.status.stats().reloads)
    },
  })
  new Counter({
    name: 'corral_upgrades_total',
    help: 'Upgrades started (USR2, `corral ctl upgrade`).',
    registers: [registry],
    collect() {
      this.reset()
      this.inc(source.status.stats().upgrades)
    },
  })
  new Gauge({
    name: 'corral_heartbeat_age_seconds',
    help: "Seconds since each worker's last heartbeat, by pid.",
    labelNames: ['pid'],
    registers: [registry],
    collect() {
      const { context } = source.snapshot()
      this.reset()
      for (const w of source.status.workers(context, source.pidOf))
        if (w.pid !== null) this.set({ pid: String(w.pid) }, w.heartbeatAgeSeconds)
    },
  })
  new Counter({
    name: 'corral_app_metrics_missed_total',
    help: "Workers left out of a scrape of the app's metrics because they did not answer in time.",
    registers: [registry],
    collect() {
      this.reset()
      this.inc(appMetricsMissed())
    },
  })
  if (source.perWorker) perWorkerMetrics(registry, source)
  return registry
}

/**
 * --metrics-per-worker: one series per live worker and metric, labelled with
 * the worker's id (and pid). Every collect starts from reset(), so a worker
 * that is gone has no series left: the label set is bounded by the workers.
 */
function perWorkerMetrics(registry: Registry, source: MetricsSource): void {
  const labelNames = ['worker', 'pid'] as const
  type Row = ReturnType<MasterStatus['workers']>[number]
  const perWorker = (
    name: string,
    help: string,
    kind: 'gauge' | 'counter',
    value: (row: Row, cpuMicros: number | undefined) => number | null,
  ) => {
    const collect = function (this: Gauge<'worker' | 'pid'> | Counter<'worker' | 'pid'>) {
      const { context } = source.snapshot()
      this.reset()
      for (const row of source.status.workers(context, source.pidOf)) {
        const v = value(row, source.status.latest(row.id)?.cpuMicros)
        if (v === null) continue
        const labels = { worker: String(row.id), pid: row.pid === null ? '' : String(row.pid) }
        if (this instanceof Gauge) this.set(labels, v)
        else this.inc(labels, v)
      }
    }
    if (kind === 'gauge') new Gauge({ name, help, labelNames, registers: [registry], collect })
    else new Counter({ name, help, labelNames, registers: [registry], collect })
  }
  perWorker(
    'corral_worker_resident_memory_bytes',
    "A worker's resident memory at its last report.",
    'gauge',
    (r) => r.rssBytes,
  )
  perWorker(
    'corral_worker_cpu_seconds_total',
    "A worker's user and system CPU time at its last report.",
    'counter',
    (_, cpu) => (cpu === undefined ? null : cpu / 1e6),
  )
  perWorker('corral_worker_requests_total', 'Requests a worker has answered.', 'counter', (r) => r.requests)
  perWorker(
    'corral_worker_requests_in_flight',
    'Requests a worker was handling at its last report.',
    'gauge',
    (r) => r.inFlight,
  )
  perWorker(
    'corral_worker_connections',
    "A worker's open client connections at its last report.",
    'gauge',
    (r) => r.connections,
  )
  perWorker(
    'corral_worker_heartbeat_age_seconds',
    "Seconds since a worker's last heartbeat.",
    'gauge',
    (r) => r.heartbeatAgeSeconds,
  )
  perWorker(
    'corral_worker_generation',
    'The generation a worker belongs to (a reload starts a new one).',
    'gauge',
    (r) => r.generation,
  )
}

/**
 * The scrape's text: corral's registry, then the workers' app registries
 * merged as prom-client's AggregatorRegistry merges them (counters and
 * histograms summed, gauges by their `aggregator`). An app metric named like
 * one of corral's own is left out; one named like the master's process
 * metrics (the app called collectDefaultMetrics() too) takes their place, as
 * it then describes the app's processes.
 */
async function exposition(
  registry: Registry,
  app: AppMetricsGathered,
  log: (message: string) => void,
): Promise<string> {
  if (app.registries.length === 0) return registry.metrics()
  let merged: Registry
  try {
    const own = (m: unknown) => (m as { name?: unknown }).name?.toString().startsWith('corral_') === true
    merged = AggregatorRegistry.aggregate(
      app.registries.map((metrics) => metrics.filter((m) => !own(m)) as MetricObjectWithValues<MetricValue<string>>[]),
    )
  } catch (err) {
    log(`The app metrics of the workers could not be merged: ${err instanceof Error ? err.message : String(err)}`)
    return registry.metrics()
  }
  // getMetricsAsArray() hands back the registered metric objects themselves, typed loosely.
  type Registrable = Parameters<Registry['registerMetric']>[0]
  const out = new Registry()
  for (const metric of registry.getMetricsAsArray())
    if (!merged.getSingleMetric(metric.name)) out.registerMetric(metric as unknown as Registrable)
  for (const metric of merged.getMetricsAsArray()) out.registerMetric(metric as unknown as Registrable)
  return out.metrics()
}

/**
 * corral_request_duration_seconds: the workers observe, the master adds up
 * their bucket counts. prom-client's Histogram only takes observations, so
 * this one is a metric of our own in its exposition shape.
 */
function durationHistogram(source: MetricsSource) {
  const name = 'corral_request_duration_seconds'
  const help = 'Time from a request reaching the app to its response closing, as the workers measured it.'
  return {
    name,
    help,
    type: 'histogram',
    aggregator: 'sum',
    reset() {},
    async get() {
      const { buckets, durationSum } = source.status.totals()
      let cumulative = 0
      const values: { metricName: string; labels: { le: number | string }; value: number }[] = DURATION_BUCKETS.map(
        (le, i) => {
          cumulative += buckets[i] ?? 0
          return { metricName: `${name}_bucket`, labels: { le }, value: cumulative }
        },
      )
      cumulative += buckets[DURATION_BUCKETS.length] ?? 0
      values.push({ metricName: `${name}_bucket`, labels: { le: '+Inf' }, value: cumulative })
      return {
        name,
        help,
        type: 'histogram',
        aggregator: 'sum',
        values: [
          ...values,
          { metricName: `${name}_sum`, labels: {}, value: durationSum },
          { metricName: `${name}_count`, labels: {}, value: cumulative },
        ],
      }
    },
  } as unknown as Parameters<Registry['registerMetric']>[0]
}

export async function startMetricsServer(bind: string, source: MetricsSource): Promise<MetricsServer> {
  let missed = 0
  const registry = createMetricsRegistry(source, () => missed)
  const said = new Set<string>()
  const warnOnce = (message: string) => {
    if (said.has(message)) return
    said.add(message)
    source.warn(message)
  }
  const scrape = async (): Promise<string> => {
    const app = await source.appMetrics()
    missed += app.missed
    for (const error of app.errors) warnOnce(`A worker's app metrics could not be read: ${error}`)
    return exposition(registry, app, warnOnce)
  }
  // Not an ESM import of node:http: see src/http/app-server.ts.
  const server = process
    .getBuiltinModule('node:http')
    .createServer((req, res) => void route(req, res, registry.contentType, scrape, source))
  // --preload with an app that calls listen(): this one is corral's (src/http/app-server.ts).
  corralServers.add(server)
  const where = parseBind(bind)
  await new Promise<void>((done, fail) => {
    server.once('error', fail)
    const listening = () => {
      server.off('error', fail)
      done()
    }
    if (where.kind === 'tcp') server.listen(where.port, where.host, listening)
    else if (where.kind === 'unix') server.listen(where.path, listening)
    else server.listen({ fd: where.fd }, listening)
  })
  const address = server.address()
  return {
    address:
      typeof address === 'object' && address !== null
        ? `http://${address.family === 'IPv6' ? `[${address.address}]` : address.address}:${address.port}`
        : `unix:${String(address)}`,
    close() {
      server.close()
      server.closeAllConnections()
    },
  }
}

async function route(
  req: IncomingMessage,
  res: ServerResponse,
  contentType: string,
  scrape: () => Promise<string>,
  source: MetricsSource,
) {
  const path = (req.url ?? '/').split('?')[0]
  const text = (status: number, body: string) => {
    res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' })
    res.end(body)
  }
  if (req.method !== 'GET' && req.method !== 'HEAD') return text(405, 'method not allowed\n')
  if (path === '/metrics') {
    try {
      const body = await scrape()
      res.writeHead(200, { 'content-type': contentType })
      return res.end(body)
    } catch (err) {
      return text(500, `${err instanceof Error ? err.message : String(err)}\n`)
    }
  }
  const { state, context, ready } = source.snapshot()
  if (path === '/healthz') {
    // The master answers, so it runs; is anybody serving?
    return source.status.healthy(context) ? text(200, 'ok\n') : text(503, 'no worker is serving\n')
  }
  if (path === '/readyz') return ready ? text(200, 'ready\n') : text(503, `not ready: ${state}\n`)
  text(404, 'not found: try /metrics, /healthz or /readyz\n')
}
