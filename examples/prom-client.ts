// An app with its own Prometheus metrics, from its own prom-client
// (npm install prom-client). Every worker counts in its own registry; corral's
// --metrics-bind asks all of them at each scrape and serves the sum, next to
// corral's own series (spec/metrics.md, "The app's metrics"):
//
//   npx corral -w 4 --metrics-bind 127.0.0.1:9100 examples/prom-client.ts
//   curl -s 127.0.0.1:9100/metrics | grep ^shop_
//
// Nothing to set up in the app: no AggregatorRegistry, no metrics route.
import type { IncomingMessage, ServerResponse } from 'node:http'
import { Counter, Gauge, Histogram } from 'prom-client'

const orders = new Counter({ name: 'shop_orders_total', help: 'Orders placed.', labelNames: ['kind'] })
const latency = new Histogram({
  name: 'shop_handler_seconds',
  help: 'Time in the handler.',
  buckets: [0.001, 0.01, 0.1],
})
// Summed across workers by default; `aggregator` picks another rule (max, min, average, first, omit).
const cacheEntries = new Gauge({ name: 'shop_cache_entries', help: 'Entries in the per-worker cache.' })
const started = new Gauge({
  name: 'shop_started_timestamp_seconds',
  help: 'When the oldest worker started.',
  aggregator: 'min',
})
started.setToCurrentTime()
const cache = new Map<string, string>()

export default function app(req: IncomingMessage, res: ServerResponse): void {
  const end = latency.startTimer()
  const url = new URL(req.url ?? '/', 'http://x')
  if (url.pathname === '/order') orders.inc({ kind: url.searchParams.get('kind') ?? 'plain' })
  cache.set(url.pathname, 'seen')
  cacheEntries.set(cache.size)
  res.writeHead(200, { 'content-type': 'text/plain' })
  res.end('ok\n')
  end()
}
