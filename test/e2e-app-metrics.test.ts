// The app's own prom-client metrics across workers, --metrics-per-worker and
// --statsd-host, end to end (spec/metrics.md): a real prom-client app under 4
// workers, exact sums after a known number of requests, a stuck worker left
// out of a scrape that still answers, per-worker series that come and go with
// their workers, and StatsD lines caught by a real UDP listener.
import { createSocket, type Socket } from 'node:dgram'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { ROOT, freePort, killAll, startCorral, waitFor } from './helpers/corral.ts'
import { get } from './helpers/load.ts'
import { scrape, serveWithMetrics, untilScraped } from './helpers/metrics.ts'

afterEach(killAll)
// Hang guards, not thresholds: several workers per test, on a machine that may be busy.
vi.setConfig({ testTimeout: 120_000 })
const STARTED = { timeoutMs: 60_000 }

const serve = serveWithMetrics
const until = untilScraped

/** The labelled series of one metric: `pid` label → value. */
function byPid(samples: Map<string, number>, name: string): Map<number, number> {
  const out = new Map<number, number>()
  for (const [key, value] of samples) {
    const m = new RegExp(`^${name}\\{worker="\\d+",pid="(\\d+)"\\}$`).exec(key)
    if (m) out.set(Number(m[1]), value)
  }
  return out
}

describe("the app's prom-client metrics", () => {
  it('are the sums over 4 workers after a known number of requests, beside corral’s own series', async ({ signal }) => {
    const { corral, url, metrics } = await serve('app-prom-client.ts', ['-w', '4'], signal)
    // Every worker's app is loaded once all 4 answer: app_workers_up is summed.
    await until(metrics, 'all 4 registries', (s) => s.get('app_workers_up') === 4)
    // New connections until at least two workers have counted, so the sum is over workers.
    const answeredBy = new Set<string>()
    let requests = 0
    while (requests < 12 || (answeredBy.size < 2 && requests < 400)) {
      const res = await get(`${url}/count?n=3`)
      expect(res.status).toBe(200)
      answeredBy.add(res.body)
      requests++
    }
    expect(answeredBy.size).toBeGreaterThanOrEqual(2)
    // The app's counters are read at the scrape itself: no report to wait for.
    const s = await scrape(metrics)
    expect(s.get('app_hits_total{route="count"}')).toBe(3 * requests)
    expect(s.get('app_sizes_count')).toBe(requests)
    expect(s.get('app_sizes_sum')).toBe(3 * requests)
    expect(s.get('app_sizes_bucket{le="2"}')).toBe(0)
    expect(s.get('app_sizes_bucket{le="5"}')).toBe(requests)
    expect(s.get('app_sizes_bucket{le="+Inf"}')).toBe(requests)
    // A gauge with aggregator 'max' is the largest worker's value, not a sum.
    expect(s.get('app_highest_pid')).toBe(Math.max(...corral.workers()))
    expect(s.get('corral_workers{state="running"}')).toBe(4)
    expect(s.get('corral_app_metrics_missed_total')).toBe(0)
    expect(s.get('process_resident_memory_bytes')).toBeGreaterThan(0)
  })

  it('leaves a stuck worker out of the scrape, counts it, and still answers', async ({ signal }) => {
    const { corral, url, metrics } = await serve('app-prom-client.ts', ['-w', '4', '--timeout', '0'], signal)
    await until(metrics, 'all 4 registries', (s) => s.get('app_workers_up') === 4)
    let stuckAnswered = false
    void get(`${url}/spin`, { timeoutMs: 110_000 }).then(
      () => (stuckAnswered = true),
      () => {},
    )
    const [, pid] = await corral.waitForLog(/spinning: worker (\d+) is stuck on purpose/)
    const s = await scrape(metrics)
    // The worker still spins (its request never answered), and the scrape came back without it.
    expect(stuckAnswered).toBe(false)
    expect(corral.workers()).toContain(Number(pid))
    expect(s.get('app_workers_up')).toBe(3)
    expect(s.get('corral_app_metrics_missed_total')).toBe(1)
    expect(s.get('corral_workers{state="running"}')).toBe(4)
    // Counted once per scrape it missed.
    expect((await scrape(metrics)).get('corral_app_metrics_missed_total')).toBe(2)
  })

  it('are absent, at no cost to the scrape, when the app never loaded prom-client', async ({ signal }) => {
    const { url, metrics } = await serve('app-status.ts', ['-w', '2'], signal)
    expect((await get(url)).status).toBe(200)
    const s = await scrape(metrics)
    expect([...s.keys()].filter((k) => k.startsWith('app_'))).toEqual([])
    expect(s.get('corral_app_metrics_missed_total')).toBe(0)
  })
})

describe('examples/prom-client.ts', () => {
  it('serves its orders and handler times summed over its workers', async ({ signal }) => {
    const port = await freePort()
    const corral = startCorral(
      ['-w', '2', '-b', `127.0.0.1:${port}`, '--metrics-bind', '127.0.0.1:0', `${ROOT}examples/prom-client.ts`],
      { signal },
    )
    const [, metrics] = await corral.waitForLog(/Metrics at: (http:\/\/127\.0\.0\.1:\d+)\/metrics/)
    await corral.untilReady()
    const url = `http://127.0.0.1:${port}`
    for (let i = 0; i < 3; i++) expect((await get(`${url}/order?kind=book`)).status).toBe(200)
    expect((await get(`${url}/`)).status).toBe(200)
    const s = await scrape(metrics!)
    expect(s.get('shop_orders_total{kind="book"}')).toBe(3)
    expect(s.get('shop_handler_seconds_count')).toBe(4)
    expect(s.get('shop_started_timestamp_seconds')).toBeGreaterThan(0)
  })
})

describe('--metrics-per-worker', () => {
  it('has one series per live worker, gone with the worker, new with its replacement', async ({ signal }) => {
    const { corral, metrics } = await serve('app-pid.ts', ['-w', '2', '--metrics-per-worker'], signal)
    const first = corral.workers()
    expect(first).toHaveLength(2)
    const NAMES = [
      'corral_worker_resident_memory_bytes',
      'corral_worker_cpu_seconds_total',
      'corral_worker_requests_total',
      'corral_worker_requests_in_flight',
      'corral_worker_connections',
      'corral_worker_heartbeat_age_seconds',
      'corral_worker_generation',
    ]
    // RSS and CPU come with the workers' first reports.
    await until(metrics, "both workers' series", (s) => NAMES.every((n) => first.every((pid) => byPid(s, n).has(pid))))
    const s = await scrape(metrics)
    for (const pid of first) {
      expect(byPid(s, 'corral_worker_resident_memory_bytes').get(pid)).toBeGreaterThan(0)
      expect(byPid(s, 'corral_worker_generation').get(pid)).toBe(0)
    }
    const [victim, survivor] = first as [number, number]
    process.kill(victim, 'SIGKILL')
    const after = await until(metrics, 'the replacement in place of the killed worker', (x) => {
      const pids = [...byPid(x, 'corral_worker_generation').keys()]
      return pids.length === 2 && !pids.includes(victim) && pids.includes(survivor)
    })
    expect(after).toBe(true)
    const last = await scrape(metrics)
    for (const name of NAMES) {
      expect(byPid(last, name).has(victim)).toBe(false)
      expect(byPid(last, name).size).toBe(2)
    }
  })

  it('is off without the flag', async ({ signal }) => {
    const { metrics } = await serve('app-pid.ts', ['-w', '1'], signal)
    const s = await scrape(metrics)
    expect(
      [...s.keys()].filter((k) => k.startsWith('corral_worker_') && !k.startsWith('corral_worker_restarts')),
    ).toEqual([])
  })
})

describe('--statsd-host', () => {
  /** A UDP listener on 127.0.0.1 that keeps every line it receives. */
  async function listener(signal: AbortSignal): Promise<{ port: number; lines: string[]; socket: Socket }> {
    const socket = createSocket('udp4')
    const lines: string[] = []
    socket.on('message', (m) => lines.push(...m.toString('utf8').split('\n')))
    await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve))
    signal.addEventListener('abort', () => socket.close())
    return { port: socket.address().port, lines, socket }
  }
  const total = (lines: string[], name: string, type: string, tags: string) =>
    lines.reduce((n, l) => {
      const m = /^([^:]+):([\d.]+)\|(\w+)(.*)$/.exec(l)
      return m && m[1] === name && m[3] === type && m[4] === tags ? n + Number(m[2]) : n
    }, 0)

  it("sends gunicorn's metrics under the prefix, with the tags, to a real UDP listener", async ({ signal }) => {
    const udp = await listener(signal)
    const tags = '|#env:test,service:shop'
    const { corral, url } = await serve(
      'app-status.ts',
      [
        '-w',
        '2',
        '--statsd-host',
        `127.0.0.1:${udp.port}`,
        '--statsd-prefix',
        'shop',
        '--dogstatsd-tags',
        'env:test,service:shop',
      ],
      signal,
    )
    for (let i = 0; i < 3; i++) expect((await get(url)).status).toBe(200)
    for (let i = 0; i < 2; i++) expect((await get(`${url}/status/404`)).status).toBe(404)
    await waitFor(() => total(udp.lines, 'shop.corral.requests', 'c', tags) === 5, { ...STARTED, what: '5 requests' })
    expect(total(udp.lines, 'shop.corral.request.status.200', 'c', tags)).toBe(3)
    expect(total(udp.lines, 'shop.corral.request.status.404', 'c', tags)).toBe(2)
    const durations = udp.lines.filter((l) =>
      /^shop\.corral\.request\.duration:[\d.]+\|ms\|#env:test,service:shop$/.test(l),
    )
    expect(durations).toHaveLength(5)
    await waitFor(() => udp.lines.includes(`shop.corral.workers:2|g${tags}`), { ...STARTED, what: 'the workers gauge' })
    // A worker killed from outside: the master's error line is counted as gunicorn counts log lines.
    const [victim] = corral.workers()
    process.kill(victim!, 'SIGKILL')
    await waitFor(() => total(udp.lines, 'shop.corral.log.error', 'c', tags) >= 1, { ...STARTED, what: 'log.error' })
  })

  it('costs no request, and no worker, when nothing listens', async ({ signal }) => {
    // A UDP port bound a moment ago and closed: every datagram meets "port unreachable".
    const udp = await listener(signal)
    const nobody = udp.port
    udp.socket.close()
    const { corral, url } = await serve('app-pid.ts', ['-w', '1', '--statsd-host', `127.0.0.1:${nobody}`], signal)
    const [worker] = corral.workers()
    // Requests through several of the worker's once-a-second sends (a send
    // after a refused one is where a connected UDP socket reports the error):
    // a span of traffic, not a threshold.
    const until = Date.now() + 3500
    let requests = 0
    while (Date.now() < until) {
      const res = await get(url)
      expect(res).toMatchObject({ status: 200, body: String(worker) })
      requests++
    }
    expect(requests).toBeGreaterThan(0)
    expect(corral.workers()).toEqual([worker])
  })
})
