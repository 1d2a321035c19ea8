// --metrics-bind (spec/metrics.md): Prometheus text at /metrics, and
// /healthz and /readyz for load balancers and probes, served by the master.
// Every value is read when scraped, from the chart's snapshot and what the
// workers last reported (src/master/status.ts): nothing is counted here, and
// nothing of this runs per request. Loaded only when --metrics-bind is given.
//
// The text format is written here rather than by prom-client: measured, the
// library added 10 to 12 MB to the master's RSS (bench/README.md), past the
// 10 MB this feature may cost, for what is a page of HELP, TYPE and sample
// lines computed at scrape time.
import { readdirSync } from 'node:fs'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import type { MasterContext } from '../../machines/master-workers.ts'
import { parseBind } from '../net/binds.ts'
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

/** Prometheus' text format, version 0.0.4. */
const CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8'

const WORKER_STATES = ['booting', 'running', 'stopping', 'killed'] as const

interface Sample {
  /** Appended to the family's name: `_bucket`, `_sum`, `_count` for a histogram. */
  readonly suffix?: string
  readonly labels?: Readonly<Record<string, string>>
  readonly value: number
}

interface Family {
  readonly name: string
  readonly help: string
  readonly type: 'gauge' | 'counter' | 'histogram'
  readonly samples: readonly Sample[]
}

/** The exposition of some metric families, as Prometheus reads it. */
export function exposition(families: readonly Family[]): string {
  let text = ''
  for (const { name, help, type, samples } of families) {
    text += `# HELP ${name} ${help.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')}\n# TYPE ${name} ${type}\n`
    for (const { suffix = '', labels = {}, value } of samples) {
      const pairs = Object.entries(labels).map(
        ([k, v]) => `${k}="${v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"')}"`,
      )
      text += `${name}${suffix}${pairs.length > 0 ? `{${pairs.join(',')}}` : ''} ${number(value)}\n`
    }
  }
  return text
}

const number = (v: number) => (Number.isNaN(v) ? 'NaN' : v === Infinity ? '+Inf' : v === -Infinity ? '-Inf' : String(v))

/** Everything /metrics says, read now. */
async function collect(source: MetricsSource, loopDelay: ReturnType<typeof monitorEventLoopDelay>): Promise<Family[]> {
  const { context } = source.snapshot()
  const stats = source.status.stats()
  const totals = source.status.totals()
  const listeners = await source.listeners()
  let cumulative = 0
  const buckets = DURATION_BUCKETS.map((le, i) => {
    cumulative += totals.buckets[i] ?? 0
    return { suffix: '_bucket', labels: { le: String(le) }, value: cumulative }
  })
  cumulative += totals.buckets[DURATION_BUCKETS.length] ?? 0
  return [
    {
      name: 'corral_workers',
      help: 'Worker processes, by the state the master knows them in.',
      type: 'gauge',
      samples: WORKER_STATES.map((state) => ({
        labels: { state },
        value: context.workers.filter((w) => w.status === state).length,
      })),
    },
    {
      name: 'corral_worker_restarts_total',
      help: 'Workers replaced, by reason: crash, timeout, max-requests, max-memory, reload.',
      type: 'counter',
      samples: RESTART_REASONS.map((reason) => ({ labels: { reason }, value: stats.restarts[reason] })),
    },
    {
      name: 'corral_requests_total',
      help: 'Requests answered, by status class (1xx … 5xx), counted by the workers and reported about once a second.',
      type: 'counter',
      samples: STATUS_CLASSES.map((code, i) => ({ labels: { code }, value: totals.byClass[i] ?? 0 })),
    },
    {
      name: 'corral_request_duration_seconds',
      help: 'Time from a request reaching the app to its response closing, as the workers measured it.',
      type: 'histogram',
      samples: [
        ...buckets,
        { suffix: '_bucket', labels: { le: '+Inf' }, value: cumulative },
        { suffix: '_sum', value: totals.durationSum },
        { suffix: '_count', value: cumulative },
      ],
    },
    {
      name: 'corral_requests_in_flight',
      help: 'Requests the workers were handling at their last report.',
      type: 'gauge',
      samples: [{ value: stats.requestsInFlight }],
    },
    {
      name: 'corral_connections',
      help: 'Open client connections of all workers at their last report.',
      type: 'gauge',
      samples: [{ value: stats.connections }],
    },
    {
      name: 'corral_listen_queue_length',
      help: "Connections waiting in a listening socket's accept queue for a worker to accept them.",
      type: 'gauge',
      samples: listeners.flatMap((l) =>
        l.queue === null ? [] : [{ labels: { listener: l.address }, value: l.queue }],
      ),
    },
    {
      name: 'corral_reloads_total',
      help: 'Reloads started (HUP, `corral ctl reload`, --reload).',
      type: 'counter',
      samples: [{ value: stats.reloads }],
    },
    {
      name: 'corral_upgrades_total',
      help: 'Upgrades started (USR2, `corral ctl upgrade`).',
      type: 'counter',
      samples: [{ value: stats.upgrades }],
    },
    {
      name: 'corral_heartbeat_age_seconds',
      help: "Seconds since each worker's last heartbeat, by pid.",
      type: 'gauge',
      samples: source.status
        .workers(context, source.pidOf)
        .flatMap((w) => (w.pid === null ? [] : [{ labels: { pid: String(w.pid) }, value: w.heartbeatAgeSeconds }])),
    },
    ...processFamilies(loopDelay),
  ]
}

/** The master's own process metrics, under the names Prometheus' client libraries use for them. */
function processFamilies(loopDelay: ReturnType<typeof monitorEventLoopDelay>): Family[] {
  const cpu = process.cpuUsage()
  const memory = process.memoryUsage()
  const gauge = (name: string, help: string, value: number): Family => ({
    name,
    help,
    type: 'gauge',
    samples: [{ value }],
  })
  const counter = (name: string, help: string, value: number): Family => ({
    name,
    help,
    type: 'counter',
    samples: [{ value }],
  })
  const families = [
    counter('process_cpu_user_seconds_total', 'User CPU time spent in seconds.', cpu.user / 1e6),
    counter('process_cpu_system_seconds_total', 'System CPU time spent in seconds.', cpu.system / 1e6),
    counter(
      'process_cpu_seconds_total',
      'Total user and system CPU time spent in seconds.',
      (cpu.user + cpu.system) / 1e6,
    ),
    gauge(
      'process_start_time_seconds',
      'Start time of the process since unix epoch in seconds.',
      Math.round(Date.now() / 1000 - process.uptime()),
    ),
    gauge('process_resident_memory_bytes', 'Resident memory size in bytes.', memory.rss),
    gauge('nodejs_heap_size_total_bytes', 'Process heap size from Node.js in bytes.', memory.heapTotal),
    gauge('nodejs_heap_size_used_bytes', 'Process heap size used from Node.js in bytes.', memory.heapUsed),
    gauge('nodejs_external_memory_bytes', 'Node.js external memory size in bytes.', memory.external),
    gauge('nodejs_eventloop_lag_mean_seconds', 'The mean of the recorded event loop delays.', loopDelay.mean / 1e9),
    gauge(
      'nodejs_eventloop_lag_p99_seconds',
      'The 99th percentile of the recorded event loop delays.',
      loopDelay.percentile(99) / 1e9,
    ),
    {
      name: 'nodejs_version_info',
      help: 'Node.js version info.',
      type: 'gauge',
      samples: [{ labels: { version: process.version }, value: 1 }],
    },
  ] satisfies Family[]
  try {
    families.push(
      gauge('process_open_fds', 'Number of open file descriptors.', readdirSync('/proc/self/fd').length - 1),
    )
  } catch {
    // not Linux
  }
  return families
}

export async function startMetricsServer(bind: string, source: MetricsSource): Promise<MetricsServer> {
  const loopDelay = monitorEventLoopDelay({ resolution: 20 })
  loopDelay.enable()
  const server = createServer((req, res) => void route(req, res, source, loopDelay))
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
      loopDelay.disable()
      server.close()
      server.closeAllConnections()
    },
  }
}

async function route(
  req: IncomingMessage,
  res: ServerResponse,
  source: MetricsSource,
  loopDelay: ReturnType<typeof monitorEventLoopDelay>,
) {
  const path = (req.url ?? '/').split('?')[0]
  const text = (status: number, body: string, type = 'text/plain; charset=utf-8') => {
    res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' })
    res.end(body)
  }
  if (req.method !== 'GET' && req.method !== 'HEAD') return text(405, 'method not allowed\n')
  if (path === '/metrics') {
    try {
      return text(200, exposition(await collect(source, loopDelay)), CONTENT_TYPE)
    } catch (err) {
      return text(500, `${err instanceof Error ? err.message : String(err)}\n`)
    }
  }
  const { state, context } = source.snapshot()
  // The master answers, so it runs; is anybody serving?
  if (path === '/healthz')
    return source.status.healthy(context) ? text(200, 'ok\n') : text(503, 'no worker is serving\n')
  if (path === '/readyz') return isReady(state) ? text(200, 'ready\n') : text(503, `not ready: ${state}\n`)
  text(404, 'not found: try /metrics, /healthz or /readyz\n')
}
