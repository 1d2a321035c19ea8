// How long a scrape of /metrics takes when it gathers the app's own metrics
// (spec/metrics.md, "The app's metrics"): corral -w 8 serving bench/prom-200.ts
// (200 series of the app's in each worker), scraped one request at a time once
// every worker answers; the time is from the request to the last byte.
//   node bench/app-metrics-scrape.ts [scrapes]
// Not part of `npm test`: figures, not assertions.
import { fileURLToPath } from 'node:url'
import { createServer } from 'node:net'
import { killAllTracked, start, stop } from './lib/proc.ts'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const SCRAPES = Number(process.argv[2] ?? 30)
const WORKERS = 8

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number }
      s.close(() => resolve(port))
    })
  })
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b)
  const m = Math.floor(s.length / 2)
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2
}

const [port, metricsPort] = [await freePort(), await freePort()]
const url = `http://127.0.0.1:${metricsPort}/metrics`
const proc = start(
  process.execPath,
  [
    `${ROOT}bin/corral.js`,
    '-w',
    String(WORKERS),
    '-b',
    `127.0.0.1:${port}`,
    '--metrics-bind',
    `127.0.0.1:${metricsPort}`,
    '--metrics-per-worker',
    '--no-control-socket',
    `${ROOT}bench/prom-200.ts`,
  ],
  { env: process.env },
)
try {
  await proc.waitForLine(/Ready: \d+ worker\(s\) serving/, 120_000)
  // Until every worker's app answers (bench_workers_up is summed over them).
  for (let i = 0; ; i++) {
    const body = await (await fetch(url)).text()
    if (body.includes(`bench_workers_up ${WORKERS}\n`)) break
    if (i > 600) throw new Error('the workers never all answered')
    await new Promise((r) => setTimeout(r, 100))
  }
  const times: number[] = []
  let lines = 0
  let appSeries = 0
  for (let i = 0; i < SCRAPES; i++) {
    const t0 = performance.now()
    const body = await (await fetch(url)).text()
    times.push(performance.now() - t0)
    const samples = body.split('\n').filter((l) => l !== '' && !l.startsWith('#'))
    lines = samples.length
    appSeries = samples.filter((l) => l.startsWith('bench_')).length
  }
  const sorted = [...times].sort((a, b) => a - b)
  console.log(
    `scrape of corral -w ${WORKERS}, the app's ${appSeries} series (merged from ${WORKERS} × ${appSeries}) + corral's, ${lines} samples in all, ${SCRAPES} scrapes: median ${median(times).toFixed(1)} ms, fastest ${sorted[0]!.toFixed(1)} ms, slowest ${sorted.at(-1)!.toFixed(1)} ms (target ≤ 100 ms: ${median(times) <= 100 ? '✓' : '✗'})`,
  )
  console.log(`JSON ${JSON.stringify({ workers: WORKERS, appSeries, samples: lines, ms: times })}`)
} finally {
  await stop(proc)
  killAllTracked()
}
