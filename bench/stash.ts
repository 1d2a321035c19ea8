// The stash against Redis on localhost (issue 21): get, set and incr calls
// per second from corral's 4 workers, the same payloads and the same calls
// in flight, and the master's event-loop lag p99 while the stash is loaded.
//   npm run bench:stash            (node bench/stash.ts [--quick] [--ms N] [--in-flight N])
// Needs Debian's redis-server (installed with apt-get when missing). Not part
// of `npm test`: figures, not assertions. Runs corral from its sources.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
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
    'in-flight': { type: 'string', default: '32' },
  },
})
const MS = Number(args.ms ?? (args.quick ? 1000 : 3000))
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

let roundId = 0
async function round(backend: Round['backend'], op: Round['op']): Promise<{ perSecond: number; stats?: StashStats }> {
  const id = ++roundId
  if (backend === 'stash') await client.stats({ reset: true })
  await control.set('go', { id, backend, op, ms: MS, inFlight: IN_FLIGHT, redisPort } satisfies Round)
  const results = await until(async () => {
    const keys = await control.keys(`result:${id}:*`)
    return keys.length === WORKERS ? keys : undefined
  }, `${WORKERS} workers' results`)
  const stats = backend === 'stash' ? await client.stats() : undefined
  let calls = 0
  for (const k of results) calls += (await control.get<number>(k)) ?? 0
  return { perSecond: calls / (MS / 1000), ...(stats && { stats }) }
}

console.log(
  `stash vs Redis ${
    spawnSync('redis-server', ['--version'])
      .stdout.toString()
      .match(/v=(\S+)/)?.[1] ?? ''
  }: ` +
    `${WORKERS} workers, ${IN_FLIGHT} calls in flight each, ${MS} ms a row, ${cpus().length} CPUs, load ${(await import('node:os')).loadavg()[0]?.toFixed(1)}`,
)
const rows: { op: string; stash: number; redis: number; ratio: number; lagP99Ms: number; lagMaxMs: number }[] = []
for (const op of OPS) {
  // Redis first for set, so that the stash's get reads keys the stash's own set wrote, and the same for Redis.
  const r = await round('redis', op)
  const s = await round('stash', op)
  rows.push({
    op,
    stash: Math.round(s.perSecond),
    redis: Math.round(r.perSecond),
    ratio: Math.round((s.perSecond / r.perSecond) * 100) / 100,
    lagP99Ms: s.stats?.lagP99Ms ?? Number.NaN,
    lagMaxMs: s.stats?.lagMaxMs ?? Number.NaN,
  })
}
// The same lag with the stash idle, over as long: on a loaded machine the master waits for a CPU either way.
await client.stats({ reset: true })
await sleep(MS)
const idle = await client.stats()
const mark = (ok: boolean) => (ok ? '✓' : '✗')
console.log(
  '| op | stash calls/s | Redis calls/s | stash / Redis (goal ≥ 0.5) | master lag p99 ms (goal ≤ 10) | lag max ms |',
)
console.log('|---|---|---|---|---|---|')
for (const r of rows) {
  console.log(
    `| ${r.op} | ${r.stash} | ${r.redis} | ${r.ratio} ${mark(r.ratio >= 0.5)} | ${r.lagP99Ms} ${mark(r.lagP99Ms <= 10)} | ${r.lagMaxMs} |`,
  )
}
console.log(`| (stash idle) | | | | ${idle.lagP99Ms} | ${idle.lagMaxMs} |`)
console.log(
  `JSON ${JSON.stringify({ ms: MS, inFlight: IN_FLIGHT, rows, idleLag: { p99Ms: idle.lagP99Ms, maxMs: idle.lagMaxMs } })}`,
)
client.close()
corral.kill('SIGTERM')
redis.kill('SIGTERM')
await Promise.all([corral, redis].map((c) => new Promise((r) => (c.exitCode === null ? c.once('exit', r) : r(null)))))
