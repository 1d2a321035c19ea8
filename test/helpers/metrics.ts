// Reading /metrics in tests: the samples of a Prometheus text scrape.
import { expect } from 'vitest'
import { fixture, freePort, startCorral, waitFor, type Corral } from './corral.ts'
import { get } from './load.ts'

/** The samples of a scrape of `metrics` (http://HOST:PORT): `name{labels}` → value. */
export async function scrape(metrics: string): Promise<Map<string, number>> {
  const res = await get(`${metrics}/metrics`)
  expect(res.status).toBe(200)
  expect(res.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/)
  const samples = new Map<string, number>()
  for (const line of res.body.split('\n')) {
    if (line === '' || line.startsWith('#')) continue
    const space = line.lastIndexOf(' ')
    samples.set(line.slice(0, space), Number(line.slice(space + 1)))
  }
  return samples
}

/** Hang guards, not thresholds: metrics tests start several workers, on a machine that may be busy. */
const METRICS_STARTED = { timeoutMs: 60_000 }

/** A corral serving fixture `app` with --metrics-bind on a free port; resolves once its workers serve. */
export async function serveWithMetrics(
  app: string,
  extra: string[],
  signal: AbortSignal,
): Promise<{ corral: Corral; url: string; metrics: string }> {
  const port = await freePort()
  const corral = startCorral(['-b', `127.0.0.1:${port}`, '--metrics-bind', '127.0.0.1:0', ...extra, fixture(app)], {
    signal,
  })
  const [, metrics] = await corral.waitForLog(/Metrics at: (http:\/\/127\.0\.0\.1:\d+)\/metrics/)
  await corral.untilReady()
  return { corral, url: `http://127.0.0.1:${port}`, metrics: metrics! }
}

/** Scrapes `metrics` until `ok` holds of its samples. */
export const untilScraped = (metrics: string, what: string, ok: (s: Map<string, number>) => boolean) =>
  waitFor(async () => ok(await scrape(metrics)), { ...METRICS_STARTED, what })
