// How evenly the workers share the load, read from the workers' own request
// counters (bench/balance-app.ts), for corral (balanced accepts, the
// default), corral with balancing off, corral --reuse-port, node:cluster
// (round robin) and PM2 cluster mode, 4 workers each, with bare node:http in
// the same run for scale. Four load shapes:
//   keepalive    wrk -c50, 50 persistent connections straight to the server;
//   nginx        wrk -c16 through a real nginx (one process) whose upstream
//                keeps a pool of 16 keep-alive connections: the pool is all
//                the upstream connections there are;
//   nginx50      the same nginx with wrk -c50: nginx opens the 34 upstream
//                connections its pool has no room for, and closes them after
//                one request, so most connections are short;
//   close        wrk -c50, a new connection per request (Connection: close).
// Per shape and server: requests/s, and max/min of the requests each worker
// answered. Nothing is pinned: the workers, wrk and nginx share the machine's
// CPUs, as in production. Figures, not assertions (see bench/README.md).
//
//   npm run bench:balance                     # 3 rounds of 5 s runs
//   node bench/balance.ts --reps 5 --duration 10 --servers corral,cluster
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { cpus, tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { foreignCpu, killAllTracked, run, sleep, start, stop, trackDescendants, type Proc } from './lib/proc.ts'
import { freePort, pollUntilOk } from './lib/probe.ts'
import { wrk, type WrkResult } from './lib/wrk.ts'

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const NODE = process.execPath
const CORRAL = join(root, 'bin/corral.js')
const APP = join(root, 'bench/balance-app.ts')
const HTTP_SERVER = join(root, 'bench/servers/balance-http.ts')
const CLUSTER_SERVER = join(root, 'bench/servers/cluster.ts')
const PM2 = join(root, 'node_modules/pm2/bin/pm2')
const NGINX = ['/usr/sbin/nginx', '/usr/bin/nginx'].find((p) => existsSync(p))
/** wrk may run on any CPU, like everything else here. */
const ALL_CPUS = `0-${cpus().length - 1}`

const { values: opt } = parseArgs({
  options: {
    servers: { type: 'string', default: 'bare,corral,corral-unbalanced,reuse-port,cluster,pm2' },
    shapes: { type: 'string', default: 'keepalive,nginx,nginx50,close' },
    reps: { type: 'string', default: '3' },
    duration: { type: 'string', default: '5' },
    warmup: { type: 'string', default: '1' },
    connections: { type: 'string', default: '50' },
    workers: { type: 'string', default: '4' },
    pool: { type: 'string', default: '16' },
  },
})
const REPS = Number(opt.reps)
const DURATION = Number(opt.duration)
const WARMUP = Number(opt.warmup)
const CONNECTIONS = Number(opt.connections)
const WORKERS = Number(opt.workers)
const POOL = Number(opt.pool)

type ServerName = 'bare' | 'corral' | 'corral-unbalanced' | 'reuse-port' | 'cluster' | 'pm2'
type Shape = 'keepalive' | 'nginx' | 'nginx50' | 'close'
const serverNames = opt.servers.split(',') as ServerName[]
const shapes = opt.shapes.split(',') as Shape[]
const LABEL: Record<ServerName, string> = {
  bare: 'bare node:http (1 process)',
  corral: `corral -w ${WORKERS}`,
  'corral-unbalanced': `corral -w ${WORKERS} --balance-slack 0`,
  'reuse-port': `corral -w ${WORKERS} --reuse-port`,
  cluster: `node:cluster, ${WORKERS} workers (RR)`,
  pm2: `PM2 cluster mode, -i ${WORKERS}`,
}
const SHAPE_LABEL: Record<Shape, string> = {
  keepalive: `keep-alive, ${CONNECTIONS} conns`,
  nginx: `nginx keepalive ${POOL}, -c${POOL}`,
  nginx50: `nginx keepalive ${POOL}, -c${CONNECTIONS}`,
  close: 'new conn/request',
}
/** From the issue. */
const TARGET = { maxMin: 1.5, closeVsBare: 0.98 }

const log = (s: string): void => void process.stderr.write(`  · ${s}\n`)
const median = (xs: number[]): number => {
  // ∞ (a worker that answered nothing) is a value here; only n/a is left out.
  const s = xs.filter((x) => !Number.isNaN(x)).sort((a, b) => a - b)
  if (s.length === 0) return Number.NaN
  const m = s.length >> 1
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2
}
const fmtInt = (n: number): string => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : 'n/a')
const fmt2 = (n: number): string => (Number.isFinite(n) ? n.toFixed(2) : n === Number.POSITIVE_INFINITY ? '∞' : 'n/a')

// ---------------------------------------------------------------- servers

interface Running {
  stop(): Promise<void>
}

async function startCorral(port: number, counts: string, extra: string[]): Promise<Running> {
  const args = [CORRAL, '-w', String(WORKERS), '-b', `127.0.0.1:${port}`, ...extra, APP]
  const env: NodeJS.ProcessEnv = { ...process.env, BALANCE_COUNTS: counts }
  delete env.CORRAL_CMD_ARGS
  const proc = start(NODE, args, { cwd: root, env })
  await proc.waitForLine(new RegExp(`Ready: ${WORKERS} worker`), 20_000)
  await pollUntilOk(port, { timeoutMs: 10_000, everyMs: 10 })
  trackDescendants(proc.pid)
  // Let the workers hear of each other before the first measurement (a few IPC messages).
  await sleep(500)
  return { stop: () => stop(proc) }
}

async function startNodeServer(script: string, port: number, env: NodeJS.ProcessEnv): Promise<Running> {
  const proc = start(NODE, [script], { env: { ...process.env, PORT: String(port), HOST: '127.0.0.1', ...env } })
  await pollUntilOk(port, { timeoutMs: 15_000, everyMs: 10 })
  trackDescendants(proc.pid)
  return { stop: () => stop(proc) }
}

/** PM2 with a private PM2_HOME, `pm2 kill`ed afterwards (as bench/run.ts does). */
async function startPm2(port: number, counts: string): Promise<Running> {
  const home = mkdtempSync(join(tmpdir(), 'corral-bench-pm2-'))
  const env = {
    ...process.env,
    PM2_HOME: home,
    PM2_DISABLE_VERSION_CHECK: 'true',
    PATH: `${dirname(NODE)}:${process.env.PATH ?? ''}`,
  }
  const eco = join(home, 'ecosystem.json')
  const app = { PORT: String(port), HOST: '127.0.0.1', BALANCE_COUNTS: counts }
  const apps = [
    { name: 'corral-bench-balance', script: HTTP_SERVER, exec_mode: 'cluster', instances: WORKERS, env: app },
  ]
  writeFileSync(eco, JSON.stringify({ apps }))
  const r = await run(NODE, [PM2, 'start', eco], { env, cwd: root, timeoutMs: 60_000 })
  const daemon = Number(readFileSync(join(home, 'pm2.pid'), 'utf8').trim())
  trackDescendants(daemon)
  if (r.code !== 0) throw new Error(`pm2 start failed (${r.code}):\n${r.out}`)
  await pollUntilOk(port, { timeoutMs: 15_000, everyMs: 10 })
  // All instances up: each writes its counter file when it starts.
  for (let i = 0; i < 100 && readdirSync(counts).length < WORKERS; i++) await sleep(100)
  trackDescendants(daemon)
  return {
    async stop() {
      await run(NODE, [PM2, 'kill'], { env, cwd: root, timeoutMs: 30_000 })
      rmSync(home, { recursive: true, force: true })
    },
  }
}

function startServer(name: ServerName, port: number, counts: string): Promise<Running> {
  const env = { BALANCE_COUNTS: counts }
  switch (name) {
    case 'bare':
      return startNodeServer(HTTP_SERVER, port, env)
    case 'corral':
      return startCorral(port, counts, [])
    case 'corral-unbalanced':
      return startCorral(port, counts, ['--balance-slack', '0'])
    case 'reuse-port':
      return startCorral(port, counts, ['--reuse-port'])
    case 'cluster':
      return startNodeServer(CLUSTER_SERVER, port, { ...env, WORKERS: String(WORKERS), EXEC: HTTP_SERVER })
    case 'pm2':
      return startPm2(port, counts)
  }
}

/** nginx, one process, proxying to `upstream` with a keep-alive pool of POOL connections. */
async function startNginx(upstream: number): Promise<{ port: number; proc: Proc; dir: string }> {
  if (!NGINX) throw new Error('nginx is not installed (apt-get install nginx-light), or leave out --shapes nginx')
  const port = await freePort()
  const dir = mkdtempSync(join(tmpdir(), 'corral-bench-nginx-'))
  mkdirSync(join(dir, 'tmp'))
  const temp = ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((t) => `${t}_temp_path ${dir}/tmp/${t};`)
  writeFileSync(
    join(dir, 'nginx.conf'),
    `daemon off;
master_process off;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  ${temp.join('\n  ')}
  upstream app { server 127.0.0.1:${upstream}; keepalive ${POOL}; keepalive_requests 1000000; }
  server {
    listen 127.0.0.1:${port};
    location / { proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
}
`,
  )
  const proc = start(NGINX, ['-p', dir, '-e', `${dir}/error.log`, '-c', `${dir}/nginx.conf`])
  await pollUntilOk(port, { timeoutMs: 10_000, everyMs: 10 })
  return { port, proc, dir }
}

// ---------------------------------------------------------------- measuring

/** Each serving process's request and connection counts, from the files bench/balance-app.ts writes. */
function readCounts(dir: string): Map<string, [number, number]> {
  const counts = new Map<string, [number, number]>()
  for (const pid of readdirSync(dir).filter((name) => /^\d+$/.test(name))) {
    const [requests, connections] = readFileSync(join(dir, pid), 'utf8').split(' ').map(Number)
    counts.set(pid, [requests!, connections!])
  }
  return counts
}

const spread = (xs: number[]): number => (xs.length > 1 ? Math.max(...xs) / Math.min(...xs) : Number.NaN)

interface Sample {
  rps: number
  errors: number
  /** Requests each worker answered during the measured run, most first. */
  perWorker: number[]
  /** Connections each worker served a first request on, warm-up included (nginx's pool forms then), in the same order. */
  connectionsPerWorker: number[]
  connectionsMaxMin: number
  maxMin: number
  foreignCores: number
}

async function measure(port: number, counts: string, shape: Shape): Promise<Sample> {
  const close = shape === 'close'
  const load = { port, cpu: ALL_CPUS, connections: shape === 'nginx' ? POOL : CONNECTIONS, close }
  const start = readCounts(counts)
  if (WARMUP > 0) await wrk({ ...load, seconds: WARMUP })
  // The counters are written every 100 ms: let the warm-up's last counts land.
  await sleep(300)
  const before = readCounts(counts)
  const fc = foreignCpu()
  const r: WrkResult = await wrk({ ...load, seconds: DURATION })
  const foreignCores = fc.end()
  await sleep(300)
  const after = readCounts(counts)
  const deltas = [...after]
    .map(([pid, [requests, connections]]) => {
      const requests0 = before.get(pid)?.[0] ?? 0
      const connections0 = start.get(pid)?.[1] ?? 0
      return [requests - requests0, connections - connections0] as const
    })
    .sort((a, b) => b[0] - a[0])
  const perWorker = deltas.map(([requests]) => requests)
  return {
    rps: r.rps,
    errors: Object.values(r.errors).reduce((a, b) => a + b, 0),
    perWorker,
    connectionsPerWorker: deltas.map(([, connections]) => connections),
    connectionsMaxMin: spread(deltas.map(([, connections]) => connections)),
    maxMin: spread(perWorker),
    foreignCores,
  }
}

const samples: Record<string, Record<string, Sample[]>> = {}
for (const s of serverNames) samples[s] = Object.fromEntries(shapes.map((sh) => [sh, []]))

process.on('SIGINT', () => {
  killAllTracked()
  process.exit(130)
})

try {
  for (let rep = 0; rep < REPS; rep++) {
    // Rotate the order each round so no server always runs first or last.
    const order = serverNames.map((_, i) => serverNames[(i + rep) % serverNames.length]!)
    for (const name of order) {
      const port = await freePort()
      const counts = mkdtempSync(join(tmpdir(), 'corral-bench-counts-'))
      const server = await startServer(name, port, counts)
      const nginx = shapes.some((s) => s.startsWith('nginx')) ? await startNginx(port) : undefined
      try {
        for (const shape of shapes) {
          const r = await measure(shape.startsWith('nginx') ? nginx!.port : port, counts, shape)
          samples[name]![shape]!.push(r)
          log(
            `round ${rep + 1}/${REPS} ${LABEL[name].padEnd(34)} ${SHAPE_LABEL[shape].padEnd(22)} ${fmtInt(r.rps).padStart(7)} req/s` +
              `  max/min ${fmt2(r.maxMin).padStart(5)}  per worker ${r.perWorker.map(fmtInt).join(' / ')}` +
              (shape === 'keepalive' || shape === 'nginx' ? ` on ${r.connectionsPerWorker.join(' / ')} conns` : '') +
              (r.errors ? `  errors ${r.errors}` : '') +
              (r.foreignCores > 0.1 ? `  (other processes used ${fmt2(r.foreignCores)} CPU)` : ''),
          )
        }
      } finally {
        if (nginx) {
          await stop(nginx.proc)
          rmSync(nginx.dir, { recursive: true, force: true })
        }
        await server.stop()
        rmSync(counts, { recursive: true, force: true })
      }
    }
  }
} finally {
  killAllTracked()
}

// ---------------------------------------------------------------- report

const med = (name: ServerName, shape: Shape, key: 'rps' | 'maxMin' | 'connectionsMaxMin') =>
  median((samples[name]?.[shape] ?? []).map((s) => s[key]))
const bareClose = serverNames.includes('bare') ? med('bare', 'close', 'rps') : Number.NaN
const unbalancedClose = serverNames.includes('corral-unbalanced')
  ? med('corral-unbalanced', 'close', 'rps')
  : Number.NaN

console.log(
  `\nBalance across ${WORKERS} workers, medians of ${REPS} round(s) of ${DURATION} s; ` +
    `max/min = most / fewest requests answered by one worker, conns max/min the same for the connections they took ` +
    `(the workers' own counters)\n`,
)
const longLived = (shape: Shape) => shape === 'keepalive' || shape === 'nginx'
const header = [
  'server',
  ...shapes.flatMap((s) => [`${SHAPE_LABEL[s]} req/s`, 'max/min', ...(longLived(s) ? ['conns max/min'] : [])]),
]
const rows = serverNames.map((name) => [
  LABEL[name],
  ...shapes.flatMap((shape) => [
    fmtInt(med(name, shape, 'rps')),
    name === 'bare'
      ? '—'
      : `${fmt2(med(name, shape, 'maxMin'))}${longLived(shape) && name === 'corral' ? ` ${med(name, shape, 'maxMin') <= TARGET.maxMin ? '✓' : '✗'}` : ''}`,
    ...(longLived(shape) ? [name === 'bare' ? '—' : fmt2(med(name, shape, 'connectionsMaxMin'))] : []),
  ]),
])
const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)))
const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`
console.log(line(header))
console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`)
for (const r of rows) console.log(line(r))
if (shapes.includes('close') && serverNames.includes('corral')) {
  // What balancing costs where accepting matters: the same 4 workers with it off. Against one bare
  // process the ratio mostly says how 4 workers and wrk share 2 CPUs; bench/run.ts compares -w 1 with bare.
  const corralClose = med('corral', 'close', 'rps')
  const vsUnbalanced = corralClose / unbalancedClose
  console.log(
    `\nnew conn/request: corral ${fmt2(vsUnbalanced)} × corral with balancing off ` +
      `(target ≥ ${TARGET.closeVsBare} ${vsUnbalanced >= TARGET.closeVsBare ? '✓' : '✗'}), ${fmt2(corralClose / bareClose)} × bare node:http (1 process)`,
  )
}
console.log(`targets: keep-alive and nginx (-c${POOL}) max/min ≤ ${TARGET.maxMin} for corral (✓/✗ above)`)
console.log(
  `machine: ${cpus().length} CPUs, shared with whatever else runs; a run with other processes busy is flagged per round above`,
)
mkdirSync(join(root, 'bench/results'), { recursive: true })
writeFileSync(join(root, 'bench/results/balance.json'), JSON.stringify({ workers: WORKERS, samples }, null, 1))
