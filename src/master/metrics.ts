// --metrics-bind (spec/metrics.md): Prometheus text at /metrics, and
// /healthz and /readyz for load balancers and probes, served by the master.
// Every value is read when scraped, from the chart's snapshot and what the
// workers last reported (src/master/status.ts): nothing is counted here, and
// nothing of this runs per request. Loaded only when --metrics-bind is given,
// so a master without it does not carry prom-client.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { corralServers } from '../http/app-server.ts'
import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client'
import { parseBind } from '../net/binds.ts'
import type { MasterContext } from '../../machines/master-workers.ts'
import { RESTART_REASONS, STATUS_CLASSES, type ListenerRow } from '../protocol/control.ts'
import { DURATION_BUCKETS } from '../protocol/master-worker.ts'
import { isReady, type MasterStatus } from './status.ts'

export interface MetricsSource {
  snapshot(): { state: string; context: MasterContext }
  status: MasterStatus
  pidOf(id: number): number | undefined
  listeners(): Promise<ListenerRow[]>
}

export interface MetricsServer {
  /** Where it listens, as `http://HOST:PORT` or `unix:PATH`. */
  readonly address: string
  close(): void
}

const WORKER_STATES = ['booting', 'running', 'stopping', 'killed'] as const

function createMetricsRegistry(source: MetricsSource): Registry {
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
      for (const state of WORKER_STATES) this.set({ state }, context.workers.filter((w) => w.status === state).length)
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
  return registry
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
  const registry = createMetricsRegistry(source)
  const server = createServer((req, res) => void route(req, res, registry, source))
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

async function route(req: IncomingMessage, res: ServerResponse, registry: Registry, source: MetricsSource) {
  const path = (req.url ?? '/').split('?')[0]
  const text = (status: number, body: string) => {
    res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' })
    res.end(body)
  }
  if (req.method !== 'GET' && req.method !== 'HEAD') return text(405, 'method not allowed\n')
  if (path === '/metrics') {
    try {
      const body = await registry.metrics()
      res.writeHead(200, { 'content-type': registry.contentType })
      return res.end(body)
    } catch (err) {
      return text(500, `${err instanceof Error ? err.message : String(err)}\n`)
    }
  }
  const { state, context } = source.snapshot()
  if (path === '/healthz') {
    // The master answers, so it runs; is anybody serving?
    return source.status.healthy(context) ? text(200, 'ok\n') : text(503, 'no worker is serving\n')
  }
  if (path === '/readyz') return isReady(state) ? text(200, 'ready\n') : text(503, `not ready: ${state}\n`)
  text(404, 'not found: try /metrics, /healthz or /readyz\n')
}
