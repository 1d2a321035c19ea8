// The stash against Redis on localhost (issue 21): get, set and incr calls
// per second from corral's 4 workers, the same payloads and the same calls
// in flight, and the master's event-loop lag p99 while the stash is loaded.
// Short rounds, Redis and the stash alternating, so that a machine whose
// load drifts weighs on both alike; the server's CPU time per call (the
// master's, redis-server's, from /proc) is the figure load moves least.
//   npm run bench:stash            (node bench/stash.ts [--quick] [--ms N] [--rounds N] [--in-flight N])
// Needs Debian's redis-server (installed with apt-get when missing). Not part
// of `npm test`: figures, not assertions. Runs corral from its sources.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { cpus } from 'node:os'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { stashClient, type StashStats } from '../src/stash/client.ts'
import type { Round } from './stash-app.ts'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const WORKERS = 4
const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    ms: { type: 'string' },
    rounds: { type: 'string' },
    'in-flight': { type: 'string', default: '32' },
  },
})
const MS = Number(args.ms ?? 1000)
const ROUNDS = Number(args.rounds ?? (args.quick ? 1 : 4))
const IN_FLIGHT = Number(args['in-flight'])
const OPS = ['set', 'get', 'incr'] as const

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number }
      s.close(() => resolve(port))
    })
  })
}

function needRedis(): void {
  if (spawnSync('redis-server', ['--version']).status === 0) return
  console.log('redis-server is missing: installing Debian’s (apt-get install redis-server)')
  const sudo = process.getuid?.() === 0 ? [] : ['sudo']
  const apt = (...a: string[]) => {
    const r = spawnSync(sudo[0] ?? 'apt-get', [...(sudo.length ? ['apt-get'] : []), ...a], {
      stdio: 'inherit',
      env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
    })
    if (r.status !== 0) throw new Error(`apt-get ${a.join(' ')} failed: install redis-server and run again`)
  }
  apt('update', '-qq')
  apt('install', '-y', '-qq', '--no-install-recommends', 'redis-server')
}

async function until<T>(probe: () => Promise<T | undefined>, what: string, timeoutMs = 60_000): Promise<T> {
  const end = Date.now() + timeoutMs
  for (;;) {
    const v = await probe().catch(() => undefined)
    if (v !== undefined) return v
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await sleep(20)
  }
}

const children: ChildProcess[] = []
process.on('exit', () => {
  for (const c of children) if (c.exitCode === null && c.pid !== undefined) process.kill(c.pid, 'SIGKILL')
})

needRedis()
const redisPort = await freePort()
// No persistence: Redis as a cache, as the stash is.
const redis = spawn(
  'redis-server',
  ['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
  {
    stdio: 'ignore',
  },
)
children.push(redis)

const httpPort = await freePort()
const corral = spawn(
  process.execPath,
  [
    `${ROOT}bin/corral.js`,
    '--no-config',
    '--no-control-socket',
    '-w',
    String(WORKERS),
    '-b',
    `127.0.0.1:${httpPort}`,
    `${ROOT}bench/stash-app.ts`,
  ],
  { cwd: ROOT, stdio: ['ignore', 'ignore', 'inherit'] },
)
children.push(corral)

const socket = await until(async () => {
  const res = await fetch(`http://127.0.0.1:${httpPort}/`)
  return ((await res.json()) as { socket?: string }).socket
}, 'corral to serve')
const client = stashClient(socket)
const control = client.table('bench')

/** A process's CPU time so far, in µs (utime + stime, in clock ticks of 10 ms). */
function cpuUs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return (Number(fields[11]) + Number(fields[12])) * 10_000
}

let roundId = 0
interface Measured {
  calls: number
  ms: number
  /** The serving process's CPU µs over the round: the master's for the stash, redis-server's for Redis. */
  serverUs: number
  stats?: StashStats
}
async function round(backend: Round['backend'], op: Round['op']): Promise<Measured> {
  const id = ++roundId
  const server = backend === 'stash' ? (corral.pid as number) : (redis.pid as number)
  if (backend === 'stash') await client.stats({ reset: true })
  const cpuBefore = cpuUs(server)
  const started = performance.now()
  await control.set('go', { id, backend, op, ms: MS, inFlight: IN_FLIGHT, redisPort } satisfies Round)
  const results = await until(async () => {
    const keys = await control.keys(`result:${id}:*`)
    return keys.length === WORKERS ? keys : undefined
  }, `${WORKERS} workers' results`)
  const ms = performance.now() - started
  const serverUs = cpuUs(server) - cpuBefore
  const stats = backend === 'stash' ? await client.stats() : undefined
  let calls = 0
  for (const k of results) calls += (await control.get<number>(k)) ?? 0
  // The workers ran for MS; the rest of `ms` is the bench's own polling, which the stash's CPU also carries.
  return { calls, ms: MS, serverUs: (serverUs * MS) / ms, ...(stats && { stats }) }
}

console.log(
  `stash vs Redis ${
    spawnSync('redis-server', ['--version'])
      .stdout.toString()
      .match(/v=(\S+)/)?.[1] ?? ''
  }: ` +
    `${WORKERS} workers, ${IN_FLIGHT} calls in flight each, ${ROUNDS} rounds of ${MS} ms a row, ${cpus().length} CPUs, load ${(await import('node:os')).loadavg()[0]?.toFixed(1)}`,
)
const totals = new Map<string, Measured[]>()
const idleP99: number[] = []
for (let r = 0; r < ROUNDS; r++) {
  for (const op of OPS) {
    // Alternating which goes first; set before get, so each get reads keys its own backend's set wrote.
    for (const backend of r % 2 === 0 ? (['redis', 'stash'] as const) : (['stash', 'redis'] as const)) {
      const key = `${backend} ${op}`
      totals.set(key, [...(totals.get(key) ?? []), await round(backend, op)])
    }
  }
  // The master's lag with the stash idle, as long as a round: on a loaded machine it waits for a CPU either way.
  await client.stats({ reset: true })
  await sleep(MS)
  idleP99.push((await client.stats()).lagP99Ms)
}
const sum = (ms: Measured[], f: (m: Measured) => number) => ms.reduce((a, m) => a + f(m), 0)
const perSecond = (ms: Measured[]) => sum(ms, (m) => m.calls) / (sum(ms, (m) => m.ms) / 1000)
const usPerCall = (ms: Measured[]) => sum(ms, (m) => m.serverUs) / sum(ms, (m) => m.calls)
const mark = (ok: boolean) => (ok ? '✓' : '✗')
const rows = OPS.map((op) => {
  const s = totals.get(`stash ${op}`) ?? []
  const r = totals.get(`redis ${op}`) ?? []
  const lags = s.map((m) => m.stats?.lagP99Ms ?? Number.NaN)
  return {
    op,
    stash: Math.round(perSecond(s)),
    redis: Math.round(perSecond(r)),
    ratio: Math.round((perSecond(s) / perSecond(r)) * 100) / 100,
    masterUsPerCall: Math.round(usPerCall(s) * 10) / 10,
    redisUsPerCall: Math.round(usPerCall(r) * 10) / 10,
    lagP99Ms: Math.max(...lags),
  }
})
const idle = Math.max(...idleP99)
console.log(
  '| op | stash calls/s | Redis calls/s | stash / Redis (goal ≥ 0.5) | master CPU µs / call | redis-server CPU µs / call | master lag p99 ms, worst round (goal ≤ 10) |',
)
console.log('|---|---|---|---|---|---|---|')
for (const r of rows) {
  console.log(
    `| ${r.op} | ${r.stash} | ${r.redis} | ${r.ratio} ${mark(r.ratio >= 0.5)} | ${r.masterUsPerCall} | ${r.redisUsPerCall} | ${r.lagP99Ms} ${mark(r.lagP99Ms <= 10)} |`,
  )
}
console.log(`| (stash idle) | | | | | | ${idle} |`)
console.log(`JSON ${JSON.stringify({ ms: MS, rounds: ROUNDS, inFlight: IN_FLIGHT, rows, idleLagP99Ms: idle })}`)
client.close()
corral.kill('SIGTERM')
redis.kill('SIGTERM')
await Promise.all([corral, redis].map((c) => new Promise((r) => (c.exitCode === null ? c.once('exit', r) : r(null)))))
