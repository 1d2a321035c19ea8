// --metrics-bind end to end (spec/metrics.md): Prometheus text after a known
// number of requests, the accept queue of a saturated corral, and the
// health endpoints through a graceful stop.
import { connect, type Socket } from 'node:net'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { fixture, freePort, killAll, startCorral, waitFor } from './helpers/corral.ts'
import { get } from './helpers/load.ts'
import { hasSs } from './helpers/sockets.ts'
import { scrape, serveWithMetrics, untilScraped } from './helpers/metrics.ts'

afterEach(killAll)
// Hang guards, not thresholds: several masters per test, on a machine that may be busy.
vi.setConfig({ testTimeout: 90_000 })
const STARTED = { timeoutMs: 45_000 }

const serve = serveWithMetrics
const until = untilScraped

describe('/metrics', () => {
  it('counts a known number of requests by status class, with durations, and keeps them when a worker goes', async ({
    signal,
  }) => {
    const { corral, url, metrics } = await serve('app-status.ts', ['-w', '2'], signal)
    for (let i = 0; i < 7; i++) expect((await get(url)).status).toBe(200)
    for (let i = 0; i < 2; i++) expect((await get(`${url}/status/404`)).status).toBe(404)
    expect((await get(`${url}/status/503`)).status).toBe(503)
    // Workers report about once a second: wait for the report, not for a time.
    await until(metrics, '10 requests', (s) => s.get('corral_request_duration_seconds_count') === 10)
    const s = await scrape(metrics)
    expect(s.get('corral_requests_total{code="2xx"}')).toBe(7)
    expect(s.get('corral_requests_total{code="4xx"}')).toBe(2)
    expect(s.get('corral_requests_total{code="5xx"}')).toBe(1)
    expect(s.get('corral_requests_total{code="1xx"}')).toBe(0)
    expect(s.get('corral_request_duration_seconds_bucket{le="+Inf"}')).toBe(10)
    expect(s.get('corral_request_duration_seconds_bucket{le="10"}')).toBe(10)
    expect(s.get('corral_requests_in_flight')).toBe(0)
    expect(s.get('corral_workers{state="running"}')).toBe(2)
    expect(s.get('corral_workers{state="booting"}')).toBe(0)
    expect(s.get('corral_reloads_total')).toBe(0)
    expect(s.get(`corral_listen_queue_length{listener="${url}"}`)).toBe(0)
    for (const reason of ['crash', 'timeout', 'max-requests', 'max-memory', 'reload'])
      expect(s.get(`corral_worker_restarts_total{reason="${reason}"}`)).toBe(0)
    for (const pid of corral.workers())
      expect(s.get(`corral_heartbeat_age_seconds{pid="${pid}"}`)).toBeGreaterThanOrEqual(0)
    // The master's own process metrics, under their usual names.
    expect(s.get('process_resident_memory_bytes')).toBeGreaterThan(0)

    // A worker killed from outside is a crash restart; what it counted stays counted.
    const [victim] = corral.workers()
    process.kill(victim!, 'SIGKILL')
    await until(metrics, 'a crash restart', (x) => x.get('corral_worker_restarts_total{reason="crash"}') === 1)
    await until(metrics, 'a replacement', (x) => x.get('corral_workers{state="running"}') === 2)
    const after = await scrape(metrics)
    expect(after.get('corral_request_duration_seconds_count')).toBe(10)
    expect(after.get('corral_requests_total{code="2xx"}')).toBe(7)
  })

  it('shows connections waiting in the accept queue when every worker is busy, TCP and unix', async ({ signal }) => {
    const dir = mkdtempSync(join(tmpdir(), 'corral-queue-'))
    const unix = join(dir, 's.sock')
    const { url, metrics } = await serve('app-pid.ts', ['-w', '1', '--timeout', '0', '-b', `unix:${unix}`], signal)
    // The only worker gets stuck in a loop: from then on nobody accepts.
    void get(`${url}/spin`, { timeoutMs: 60_000 }).catch(() => {})
    const waiting: Socket[] = []
    signal.addEventListener('abort', () => {
      for (const c of waiting) c.destroy()
    })
    // The kernel completes these handshakes and queues them for an accept
    // that does not come. The worker may take a few before it is stuck:
    // connect until 3 wait (never more than the worker could have taken).
    const port = Number(new URL(url).port)
    const tcpQueue = `corral_listen_queue_length{listener="${url}"}`
    for (let i = 0; i < 20 && ((await scrape(metrics)).get(tcpQueue) ?? 0) < 3; i++)
      waiting.push(connect(port, '127.0.0.1').on('error', () => {}))
    await until(metrics, '3 queued TCP connections', (s) => (s.get(tcpQueue) ?? 0) >= 3)
    if (hasSs()) {
      for (let i = 0; i < 2; i++) waiting.push(connect(unix).on('error', () => {}))
      await until(
        metrics,
        '2 queued unix connections',
        (s) => s.get(`corral_listen_queue_length{listener="unix:${unix}"}`) === 2,
      )
    }
    for (const c of waiting) c.destroy()
  })

  it('is off by default', async ({ signal }) => {
    const port = await freePort()
    const corral = startCorral(['-w', '1', '-b', `127.0.0.1:${port}`, fixture('app-pid.ts')], { signal })
    await corral.untilReady()
    expect(corral.log()).not.toMatch(/Metrics at/)
  })
})

describe('/healthz and /readyz', () => {
  it('/readyz turns 503 when a graceful stop begins, while /healthz stays 200 until the workers are gone', async ({
    signal,
  }) => {
    const { corral, url, metrics } = await serve('app-pid.ts', ['-w', '1', '--graceful-timeout', '30'], signal)
    expect((await get(`${metrics}/readyz`)).status).toBe(200)
    expect((await get(`${metrics}/healthz`)).status).toBe(200)
    // A request the worker is still answering when the stop begins.
    const slow = get(`${url}/slow?ms=4000`)
    await until(metrics, 'the slow request in flight', (s) => s.get('corral_requests_in_flight') === 1)
    corral.signal('SIGTERM')
    await waitFor(async () => (await get(`${metrics}/readyz`)).status === 503, { ...STARTED, what: '/readyz 503' })
    const ready = await get(`${metrics}/readyz`)
    expect(ready.body).toBe('not ready: draining.graceful\n')
    // The worker still drains its request: the master is healthy.
    const healthz = await get(`${metrics}/healthz`)
    expect(healthz).toMatchObject({ status: 200, body: 'ok\n' })
    expect((await slow).status).toBe(200)
    expect(await corral.exited).toEqual({ code: 0, signal: null })
  })

  it('answers 404 elsewhere and 405 to other methods', async ({ signal }) => {
    const { metrics } = await serve('app-pid.ts', ['-w', '1'], signal)
    expect((await get(`${metrics}/`)).status).toBe(404)
    const res = await fetch(`${metrics}/metrics`, { method: 'POST' })
    expect(res.status).toBe(405)
  })
})
