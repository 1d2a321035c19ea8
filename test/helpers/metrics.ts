// Reading /metrics in tests: the samples of a Prometheus text scrape.
import { expect } from 'vitest'
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
