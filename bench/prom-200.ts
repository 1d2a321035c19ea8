// An app with 200 prom-client series of its own, for bench/app-metrics-scrape.ts:
// 10 counters × 10 label values, 5 gauges × 10 label values, 7 histograms
// whose 5 buckets (+Inf included), sum and count make 49 series more, and
// bench_workers_up.
import type { IncomingMessage, ServerResponse } from 'node:http'
import { Counter, Gauge, Histogram } from 'prom-client'

const LABELS = Array.from({ length: 10 }, (_, i) => `v${i}`)
for (let c = 0; c < 10; c++) {
  const counter = new Counter({ name: `bench_counter_${c}_total`, help: 'A counter.', labelNames: ['k'] })
  for (const k of LABELS) counter.inc({ k }, c + 1)
}
for (let g = 0; g < 5; g++) {
  const gauge = new Gauge({ name: `bench_gauge_${g}`, help: 'A gauge.', labelNames: ['k'] })
  for (const k of LABELS) gauge.set({ k }, g)
}
for (let h = 0; h < 7; h++) {
  const histogram = new Histogram({ name: `bench_histogram_${h}`, help: 'A histogram.', buckets: [0.01, 0.1, 1, 10] })
  histogram.observe(h / 10)
}
new Gauge({ name: 'bench_workers_up', help: 'Workers whose registry answered.' }).set(1)

export default function app(_req: IncomingMessage, res: ServerResponse): void {
  res.writeHead(200, { 'content-type': 'text/plain' })
  res.end('ok\n')
}
