// A small, bounded load generator for end-to-end tests: a few concurrent
// request loops against a loopback server, counting every failure. Bodies are
// kept so a test can see which worker pid answered.
import { Agent, request } from 'node:http'
import { waitFor } from './corral.ts'

interface LoadResult {
  ok: number
  failed: number
  errors: string[]
  /** Response bodies seen, with how often. */
  bodies: Map<string, number>
}

export interface Load {
  /** What the load has seen so far (live: the same object stop() resolves with). */
  seen(): Readonly<LoadResult>
  /** Resolves once `n` more requests have been answered (or failed) from now: the load goes on past a point of interest. */
  more(n: number): Promise<void>
  stop(): Promise<LoadResult>
}

export function startLoad(url: string, { connections = 4, keepAlive = false, maxRequests = 200_000 } = {}): Load {
  const agent = new Agent({ keepAlive, maxSockets: connections })
  const result: LoadResult = { ok: 0, failed: 0, errors: [], bodies: new Map() }
  let running = true
  let sent = 0
  const one = () =>
    new Promise<void>((resolve) => {
      const req = request(url, { agent }, (res) => {
        let body = ''
        res.setEncoding('utf8')
        res.on('data', (c: string) => (body += c))
        res.on('end', () => {
          if (res.statusCode === 200) {
            result.ok++
            result.bodies.set(body, (result.bodies.get(body) ?? 0) + 1)
          } else {
            result.failed++
            result.errors.push(`status ${res.statusCode}`)
          }
          resolve()
        })
        res.on('error', (e) => {
          result.failed++
          result.errors.push(e.message)
          resolve()
        })
      })
      req.on('error', (e) => {
        result.failed++
        result.errors.push(e.message)
        resolve()
      })
      req.end()
    })
  const loops = Array.from({ length: connections }, async () => {
    while (running && sent++ < maxRequests) await one()
  })
  return {
    seen: () => result,
    more(n) {
      const target = result.ok + result.failed + n
      return waitFor(() => result.ok + result.failed >= target || !running, { what: `${n} more answers` }).then(
        () => undefined,
      )
    },
    async stop() {
      running = false
      await Promise.all(loops)
      agent.destroy()
      return result
    },
  }
}

/** One GET; resolves with status and body. */
export function get(
  url: string,
  { timeoutMs = 10_000 } = {},
): Promise<{ status: number; body: string; headers: Record<string, string | string[] | undefined> }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { agent: false, timeout: timeoutMs }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (c: string) => (body += c))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }))
      res.on('error', reject)
    })
    req.on('timeout', () => req.destroy(new Error(`GET ${url} timed out`)))
    req.on('error', reject)
    req.end()
  })
}

/** One GET of a JSON body; rejects on any status but 200. */
export async function getJson<T>(url: string): Promise<T> {
  const res = await get(url)
  if (res.status !== 200) throw new Error(`status ${res.status}: ${res.body}`)
  return JSON.parse(res.body) as T
}

/**
 * A GET whose response headers have arrived (so the request is in flight in
 * a worker) and whose end is still to come: `done` settles with the status
 * and body once the body ends, or with the error that cut it short.
 */
export function inFlight(url: string): Promise<{ done: Promise<{ status: number; body: string } | Error> }> {
  return new Promise((started, failed) => {
    const req = request(url, { agent: false }, (res) => {
      const done = new Promise<{ status: number; body: string } | Error>((settle) => {
        let body = ''
        res.setEncoding('utf8')
        res.on('data', (c: string) => (body += c))
        res.on('end', () => settle({ status: res.statusCode ?? 0, body }))
        res.on('error', settle)
        res.on('aborted', () => settle(new Error('response cut short')))
      })
      started({ done })
    })
    req.on('error', failed)
    req.end()
  })
}
