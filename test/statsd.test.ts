// The StatsD client (src/net/statsd.ts) against a real UDP listener on
// 127.0.0.1: counters summed into one line, timers one line each, datagrams
// cut at line ends under the MTU-safe size, prefix and tags on every line.
import { createSocket, type Socket } from 'node:dgram'
import { afterEach, describe, expect, it } from 'vitest'
import { waitFor } from './helpers/corral.ts'
import { createStatsd } from '../src/net/statsd.ts'

const sockets: Socket[] = []
afterEach(() => {
  for (const s of sockets.splice(0)) s.close()
})

async function listener(): Promise<{ address: string; datagrams: string[] }> {
  const socket = createSocket('udp4')
  sockets.push(socket)
  const datagrams: string[] = []
  socket.on('message', (m) => datagrams.push(m.toString('utf8')))
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve))
  return { address: `127.0.0.1:${socket.address().port}`, datagrams }
}

describe('the StatsD client', () => {
  it('sums counters, keeps every timing, and cuts datagrams only at line ends', async () => {
    const udp = await listener()
    const statsd = createStatsd({ statsdHost: udp.address, statsdPrefix: 'shop.', dogstatsdTags: 'env:test' })!
    for (let i = 0; i < 300; i++) {
      statsd.count('requests')
      statsd.timing('request.duration', i + 0.5)
    }
    statsd.gauge('workers', 3)
    statsd.close()
    const lines = () => udp.datagrams.flatMap((d) => d.split('\n'))
    await waitFor(() => lines().some((l) => l.startsWith('shop.corral.workers:')), { what: 'the last datagram' })
    for (const d of udp.datagrams) expect(Buffer.byteLength(d)).toBeLessThanOrEqual(1432)
    expect(udp.datagrams.length).toBeGreaterThan(1)
    const timings = lines().filter((l) => l.startsWith('shop.corral.request.duration:'))
    expect(timings).toHaveLength(300)
    expect(timings[7]).toBe('shop.corral.request.duration:7.5|ms|#env:test')
    expect(lines()).toContain('shop.corral.requests:300|c|#env:test')
    expect(lines()).toContain('shop.corral.workers:3|g|#env:test')
    // Every line whole: name, value, type, tags.
    for (const l of lines()) expect(l).toMatch(/^shop\.corral\.[a-z.]+:[\d.]+\|(c|ms|g)\|#env:test$/)
  })

  it('is off without --statsd-host', () => {
    expect(createStatsd({ statsdHost: undefined, statsdPrefix: '', dogstatsdTags: '' })).toBeUndefined()
  })
})
