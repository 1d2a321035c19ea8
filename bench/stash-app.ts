// The app bench/stash.ts runs in each of corral's workers. It waits for a
// round posted in the stash (table `bench`, key `go`), runs it for its
// duration against the stash or against Redis, and writes how many calls it
// made back into the stash (`result:ROUND:PID`). GET /socket names the
// stash's socket so the bench can reach it too.
import type { IncomingMessage, ServerResponse } from 'node:http'
import { stash } from 'corral'

export interface Round {
  id: number
  backend: 'stash' | 'redis'
  op: 'get' | 'set' | 'incr'
  ms: number
  /** Calls each worker keeps in flight. */
  inFlight: number
  redisPort: number
}

/** What every get and set moves: a small user record, as a cache or session would hold. */
export const PAYLOAD = {
  id: 12345,
  name: 'user-12345',
  roles: ['reader', 'writer'],
  flags: { beta: true, newCheckout: false },
  note: 'x'.repeat(64),
}
export const KEYS = 1000

const control = stash.table('bench')

interface Backend {
  get(key: string): Promise<unknown>
  set(key: string, value: typeof PAYLOAD): Promise<unknown>
  incr(key: string): Promise<number>
}

const data = stash.table('data')
const stashBackend: Backend = {
  get: (key) => data.get(key),
  set: (key, value) => data.set(key, value),
  incr: (key) => data.incr(key),
}

let redis: Backend | undefined
async function redisBackend(port: number): Promise<Backend> {
  if (redis) return redis
  const { Redis } = await import('ioredis')
  // Auto-pipelining: the calls made in one tick go out in one write, as the stash's client does.
  const client = new Redis({ port, host: '127.0.0.1', enableAutoPipelining: true, lazyConnect: false })
  redis = {
    get: async (key) => {
      const text = await client.get(key)
      return text === null ? undefined : JSON.parse(text)
    },
    set: (key, value) => client.set(key, JSON.stringify(value)),
    incr: (key) => client.incr(key),
  }
  return redis
}

async function run(round: Round): Promise<number> {
  const backend = round.backend === 'stash' ? stashBackend : await redisBackend(round.redisPort)
  const end = performance.now() + round.ms
  let calls = 0
  let n = process.pid
  const one = (): Promise<unknown> => {
    const key = `k:${n++ % KEYS}`
    if (round.op === 'get') return backend.get(key)
    if (round.op === 'set') return backend.set(key, PAYLOAD)
    return backend.incr(`counter:${n % 8}`)
  }
  await Promise.all(
    Array.from({ length: round.inFlight }, async () => {
      while (performance.now() < end) {
        await one()
        calls++
      }
    }),
  )
  return calls
}

async function follow(): Promise<void> {
  let last = 0
  for (;;) {
    const round = await control.get<Round>('go').catch(() => undefined)
    if (round && round.id > last) {
      last = round.id
      const calls = await run(round)
      await control.set(`result:${round.id}:${process.pid}`, calls)
    } else await new Promise((r) => setTimeout(r, 20))
  }
}
void follow()

export default function app(_req: IncomingMessage, res: ServerResponse): void {
  res.writeHead(200, { 'content-type': 'application/json' })
  res.end(JSON.stringify({ socket: process.env.CORRAL_STASH_SOCKET, pid: process.pid }))
}
