// corral benchmark: throughput against bare node:http, node:cluster and PM2
// (measured in the same run, same handler), memory, and lifecycle times.
//
//   npm run bench                       # everything (about 4 minutes)
//   npm run bench -- --only throughput  # or memory, lifecycle (comma-separated)
//   npm run bench -- --quick            # 1 rep, 2 s runs: a smoke test, not a measurement
//
// See bench/README.md for what is measured and how.
import { execFileSync, spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs'
import { cpus, tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import {
  ageMs,
  children,
  cpusAllowed,
  descendants,
  foreignCpu,
  kill,
  killAllTracked,
  now,
  rssKiB,
  run,
  running,
  sleep,
  start,
  stop,
  track,
  trackDescendants,
  trackedStillRunning,
  until,
  waitQuiet,
  type Proc,
} from './lib/proc.ts'
import { backgroundProber, freePort, pollUntilOk, probe } from './lib/probe.ts'
import { wrk, type WrkResult } from './lib/wrk.ts'

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const NODE = process.execPath
/**
 * corral is run from a copy of the working tree taken when the bench starts
 * (bin/, src/, machines/, package.json, and the bundle built from them), so
 * that edits made while it runs cannot change what is measured halfway. A
 * dot-directory, so that tsc's "bench" include does not pick it up.
 */
const SNAPSHOT = join(root, 'bench/results/.corral-snapshot')
const CORRAL = join(SNAPSHOT, 'bin/corral.js')
const HELLO = join(root, 'bench/hello.ts')
const HTTP_SERVER = join(root, 'bench/servers/http.ts')
const HTTP_SERVER_JS = join(root, 'bench/servers/http-js.mjs')
const CLUSTER_SERVER = join(root, 'bench/servers/cluster.ts')
const PM2 = join(root, 'node_modules/pm2/bin/pm2')
const SERVER_CPU = '0'
const LOAD_CPU = '1'

// ---------------------------------------------------------------- options

const { values: opt } = parseArgs({
  options: {
    only: { type: 'string', default: 'throughput,memory,lifecycle' },
    servers: { type: 'string', default: 'bare,corral,cluster,pm2' },
    reps: { type: 'string', default: '3' },
    'lifecycle-reps': { type: 'string', default: '5' },
    duration: { type: 'string', default: '5' },
    warmup: { type: 'string', default: '1' },
    connections: { type: 'string', default: '50' },
    'quiet-wait': { type: 'string', default: '120' },
    attempts: { type: 'string', default: '4' },
    quick: { type: 'boolean', default: false },
    'from-source': { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
})
if (opt.help) {
  console.log(`usage: node bench/run.ts [--only throughput,memory,lifecycle] [--servers bare,corral,cluster,pm2]
       [--reps 3] [--lifecycle-reps 5] [--duration 5] [--warmup 1] [--connections 50] [--quiet-wait 120] [--attempts 4] [--quick] [--from-source]

corral is run as \`node bin/corral.js\` from a copy of bin/, src/, machines/
and package.json taken at the start, with its bundle built there by
scripts/build.ts (what \`npm run build\` puts in dist/; the repository's own
dist/ is not touched). --from-source runs that copy's TypeScript sources
instead (CORRAL_FROM_SOURCE=1).

Before each measurement the bench waits (up to --quiet-wait seconds) for the
machine to be idle, and it records the CPU that processes it did not start
used during each measurement; a disturbed measurement is taken again (up to
--attempts times, keeping the least disturbed) and flagged if none was clean.`)
  process.exit(0)
}
const sections = new Set(opt.only.split(','))
const serverNames = opt.servers.split(',') as ServerName[]
const REPS = opt.quick ? 1 : Number(opt.reps)
const LIFE_REPS = opt.quick ? 2 : Number(opt['lifecycle-reps'])
const DURATION = opt.quick ? 2 : Number(opt.duration)
const WARMUP = opt.quick ? 1 : Number(opt.warmup)
const CONNECTIONS = Number(opt.connections)
/** Environment for every corral process. */
const CORRAL_ENV: NodeJS.ProcessEnv = (() => {
  const env: NodeJS.ProcessEnv = { ...process.env }
  delete env.CORRAL_CMD_ARGS // settings from the environment would change what is measured
  if (opt['from-source']) env.CORRAL_FROM_SOURCE = '1'
  else delete env.CORRAL_FROM_SOURCE
  return env
})()
const QUIET_WAIT_MS = Number(opt['quiet-wait']) * 1000
const ATTEMPTS = Math.max(1, Number(opt.attempts))
/** Busy fraction of all CPUs below which the machine counts as quiet. */
const QUIET = 0.1
/** Cores used by other processes during a throughput run above which it is taken again / flagged. */
const NOISY_CORES = 0.1
/**
 * The same for the short lifecycle windows (0.1–0.5 s in which several
 * node processes start): on an idle machine these show 0.1–0.2 CPU of
 * kernel time that /proc/stat counts but no process does, while a test
 * suite running beside the bench shows 0.5 and more.
 */
const NOISY_CORES_LIFECYCLE = 0.25
const MEMORY_REQUESTS = 2000
/** How old the only worker must be before it is killed (corral's crash-streak window is 5 s). */
const KILL_MIN_AGE_MS = 6000

// ---------------------------------------------------------------- targets (from the issue)

const TARGET = {
  vsBare: 0.95, // corral ≥ 0.95 × bare node:http, both load shapes
  vsClusterClose: 3, // corral ≥ 3 × node:cluster, new connection per request
  masterRssMiB: 10, // corral master RSS within 10 MiB of bare node:http
  workerRssMiB: 5, // one corral worker within 5 MiB of bare node:http
  firstRequestMs: 300, // launch (-w 4) → first answered request
  downtimeMs: 100, // SIGKILLed only worker → next successful response
  hupMs: 500, // HUP (-w 4) → new generation serving; and → old generation gone
}

// ---------------------------------------------------------------- helpers

const median = (xs: number[]): number => {
  if (xs.length === 0) return NaN
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2
}
const mark = (ok: boolean): string => (ok ? '✓' : '✗')
const fmtInt = (n: number): string => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : 'n/a')
const fmt1 = (n: number): string => (Number.isFinite(n) ? n.toFixed(1) : 'n/a')
const fmt2 = (n: number): string => (Number.isFinite(n) ? n.toFixed(2) : 'n/a')
const mib = (kib: number): number => kib / 1024
const log = (s: string): void => void process.stderr.write(`  · ${s}\n`)

/** Wait for an idle machine before a measurement; say so when waiting. */
const quiet = (what: string): Promise<number> =>
  waitQuiet(QUIET, QUIET_WAIT_MS, (busy) =>
    log(
      `machine busy (${Math.round(busy * 100)}% of all CPUs) before ${what}: waiting up to ${QUIET_WAIT_MS / 1000} s for it to settle`,
    ),
  )

const noiseNote = (cores: number, limit = NOISY_CORES): string =>
  cores > limit ? `  ⚠ other processes used ${fmt2(cores)} CPU meanwhile` : ''

/**
 * Take one measurement on a quiet machine: wait for quiet, measure, and if
 * processes this run did not start used more than NOISY_CORES meanwhile,
 * measure again (up to ATTEMPTS times), keeping the least disturbed result.
 */
async function cleanly<T extends { foreignCores: number }>(
  what: string,
  measure: () => Promise<T>,
  limit = NOISY_CORES,
): Promise<T> {
  let best: T | undefined
  for (let attempt = 1; attempt <= ATTEMPTS; attempt++) {
    await quiet(what)
    const r = await measure()
    if (r.foreignCores <= limit) return r
    if (!best || r.foreignCores < best.foreignCores) best = r
    if (attempt < ATTEMPTS) log(`${what}: other processes used ${fmt2(r.foreignCores)} CPU meanwhile; measuring again`)
  }
  return best!
}

function which(cmd: string): string | undefined {
  const r = spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8', timeout: 5000 })
  return r.status === 0 ? r.stdout.trim() : undefined
}

function sh(cmd: string, args: string[]): string {
  try {
    return execFileSync(cmd, args, {
      encoding: 'utf8',
      timeout: 10_000,
      cwd: root,
      stdio: ['ignore', 'pipe', 'pipe'],
    }).trim()
  } catch {
    return '?'
  }
}

// ---------------------------------------------------------------- servers

type ServerName = 'bare' | 'corral' | 'cluster' | 'pm2'
const LABEL: Record<ServerName, string> = {
  bare: 'bare node:http',
  corral: 'corral -w 1',
  cluster: 'node:cluster, 1 worker (RR)',
  pm2: 'PM2 cluster mode, -i 1',
}

interface Running {
  /** Every process serving (or accepting for) this server, for the affinity check. */
  pids(): number[]
  stop(): Promise<void>
}

const pinned = (args: string[]): [string, string[]] => ['taskset', ['-c', SERVER_CPU, ...args]]

async function startBare(port: number, pin = true, script = HTTP_SERVER): Promise<Running & { proc: Proc }> {
  const argv = [NODE, script]
  const [cmd, args] = pin ? pinned(argv) : [argv[0]!, argv.slice(1)]
  const proc = start(cmd, args, { env: { ...process.env, PORT: String(port), HOST: '127.0.0.1' } })
  await pollUntilOk(port, { timeoutMs: 15_000, everyMs: 10 })
  return { proc, pids: () => [proc.pid], stop: () => stop(proc) }
}

async function startCorral(port: number, workers: number, pin = true): Promise<Running & { proc: Proc }> {
  const argv = [NODE, CORRAL, '-w', String(workers), '-b', `127.0.0.1:${port}`, HELLO]
  const [cmd, args] = pin ? pinned(argv) : [argv[0]!, argv.slice(1)]
  const proc = start(cmd, args, { cwd: SNAPSHOT, env: CORRAL_ENV })
  await proc.waitForLine(/Ready: \d+ worker/, 20_000)
  await pollUntilOk(port, { timeoutMs: 10_000, everyMs: 10 })
  trackDescendants(proc.pid)
  return { proc, pids: () => [proc.pid, ...descendants(proc.pid)], stop: () => stop(proc) }
}

async function startCluster(port: number): Promise<Running> {
  const proc = start(...pinned([NODE, CLUSTER_SERVER]), {
    env: { ...process.env, PORT: String(port), HOST: '127.0.0.1', WORKERS: '1' },
  })
  await pollUntilOk(port, { timeoutMs: 15_000, everyMs: 10 })
  trackDescendants(proc.pid)
  return { pids: () => [proc.pid, ...descendants(proc.pid)], stop: () => stop(proc) }
}

/** PM2 with a private PM2_HOME; the daemon is pinned because the CLI that forks it is. */
let pm2Home: string | undefined
const pm2Env = (home: string): NodeJS.ProcessEnv => ({
  ...process.env,
  PM2_HOME: home,
  PM2_DISABLE_VERSION_CHECK: 'true', // no network from the daemon
  // PM2 checks the `node` on PATH to decide how to run a .ts script.
  PATH: `${dirname(NODE)}:${process.env.PATH ?? ''}`,
})

function pm2DaemonPid(home: string): number | undefined {
  try {
    const pid = Number(readFileSync(join(home, 'pm2.pid'), 'utf8').trim())
    return pid > 0 ? pid : undefined
  } catch {
    return undefined
  }
}

async function startPm2(port: number): Promise<Running> {
  const home = mkdtempSync(join(tmpdir(), 'corral-bench-pm2-'))
  pm2Home = home
  const eco = join(home, 'ecosystem.json')
  writeFileSync(
    eco,
    JSON.stringify({
      apps: [
        {
          name: 'corral-bench-hello',
          script: HTTP_SERVER,
          exec_mode: 'cluster',
          instances: 1,
          env: { PORT: String(port), HOST: '127.0.0.1' },
        },
      ],
    }),
  )
  const r = await run(...pinned([NODE, PM2, 'start', eco]), { env: pm2Env(home), cwd: root, timeoutMs: 60_000 })
  const daemon = pm2DaemonPid(home)
  track(daemon)
  if (daemon) trackDescendants(daemon)
  if (r.code !== 0) throw new Error(`pm2 start failed (${r.code}):\n${r.out}`)
  await pollUntilOk(port, { timeoutMs: 15_000, everyMs: 10 })
  if (daemon) trackDescendants(daemon)
  return {
    pids: () => (daemon ? [daemon, ...descendants(daemon)] : []),
    stop: () => stopPm2(home),
  }
}

async function stopPm2(home: string): Promise<void> {
  const daemon = pm2DaemonPid(home)
  const family = daemon ? [daemon, ...trackDescendants(daemon)] : []
  try {
    await run(NODE, [PM2, 'kill'], { env: pm2Env(home), cwd: root, timeoutMs: 30_000 })
  } catch (e) {
    log(`pm2 kill: ${(e as Error).message}`)
  }
  await until(() => family.every((p) => !running(p)), 10_000, 'PM2 daemon and its apps to exit').catch(() => {
    for (const p of family) if (running(p)) kill(p, 'SIGKILL')
  })
  rmSync(home, { recursive: true, force: true })
  if (pm2Home === home) pm2Home = undefined
}

function startServer(name: ServerName, port: number): Promise<Running> {
  switch (name) {
    case 'bare':
      return startBare(port)
    case 'corral':
      return startCorral(port, 1)
    case 'cluster':
      return startCluster(port)
    case 'pm2':
      return startPm2(port)
  }
}

// ---------------------------------------------------------------- 1. throughput

type Shape = 'keepalive' | 'close'
const SHAPES: Shape[] = ['keepalive', 'close']
const SHAPE_LABEL: Record<Shape, string> = { keepalive: 'keep-alive', close: 'new conn/request' }

type Sample = WrkResult & { foreignCores: number }

interface ThroughputResult {
  samples: Record<string, Record<Shape, Sample[]>>
  median: Record<string, Record<Shape, number>>
  affinity: Record<string, string[]>
}

async function throughput(): Promise<ThroughputResult> {
  const samples: ThroughputResult['samples'] = {}
  const affinity: ThroughputResult['affinity'] = {}
  for (const s of serverNames) samples[s] = { keepalive: [], close: [] }
  for (let rep = 0; rep < REPS; rep++) {
    // Rotate the order each round so no server always runs first or last.
    const order = serverNames.map((_, i) => serverNames[(i + rep) % serverNames.length]!)
    for (const name of order) {
      const port = await freePort()
      const srv = await startServer(name, port)
      try {
        affinity[name] = srv.pids().map((p) => `${p}:${cpusAllowed(p)}`)
        for (const shape of SHAPES) {
          const close = shape === 'close'
          const r = await cleanly(
            `${LABEL[name]}, ${SHAPE_LABEL[shape]}, round ${rep + 1}`,
            async (): Promise<Sample> => {
              if (WARMUP > 0) await wrk({ port, cpu: LOAD_CPU, connections: CONNECTIONS, seconds: WARMUP, close })
              // Other processes' CPU is counted machine-wide (so short-lived
              // ones count too) over the middle of the run, while every
              // process of ours, wrk included, is still alive.
              const running = wrk({ port, cpu: LOAD_CPU, connections: CONNECTIONS, seconds: DURATION, close })
              const margin = Math.min(500, (DURATION * 1000) / 4)
              await sleep(margin)
              const fc = foreignCpu()
              await sleep(DURATION * 1000 - 2 * margin)
              const foreignCores = fc.end()
              return { ...(await running), foreignCores }
            },
          )
          samples[name]![shape].push(r)
          const errs = Object.entries(r.errors)
            .filter(([, n]) => n > 0)
            .map(([k, n]) => `${k} ${n}`)
            .join(', ')
          log(
            `round ${rep + 1}/${REPS} ${LABEL[name].padEnd(28)} ${SHAPE_LABEL[shape].padEnd(17)} ${fmtInt(r.rps).padStart(7)} req/s${errs ? `  (errors: ${errs})` : ''}${noiseNote(r.foreignCores)}`,
          )
        }
      } finally {
        await srv.stop()
      }
      await sleep(500)
    }
  }
  const med: ThroughputResult['median'] = {}
  for (const s of serverNames)
    med[s] = {
      keepalive: median(samples[s]!.keepalive.map((r) => r.rps)),
      close: median(samples[s]!.close.map((r) => r.rps)),
    }
  return { samples, median: med, affinity }
}

// ---------------------------------------------------------------- 2. memory

interface MemoryResult {
  samplesKiB: { bare: number[]; master: number[]; worker: number[]; bareJs: number[] }
  medianMiB: { bare: number; master: number; worker: number; bareJs: number }
}

async function memory(): Promise<MemoryResult> {
  const samples = { bare: [] as number[], master: [] as number[], worker: [] as number[], bareJs: [] as number[] }
  for (let rep = 0; rep < REPS; rep++) {
    await quiet(`memory round ${rep + 1}`)
    const cPort = await freePort()
    const bPort = await freePort()
    const jPort = await freePort()
    const corral = await startCorral(cPort, 1)
    const bare = await startBare(bPort)
    const bareJs = await startBare(jPort, true, HTTP_SERVER_JS)
    try {
      const workers = children(corral.proc.pid)
      if (workers.length !== 1) throw new Error(`expected 1 corral worker, found ${workers.length}`)
      // The same modest load on both (a flood would mostly measure how far V8
      // grew the young generation): requests one after another, each on a
      // fresh connection; then let them settle.
      for (const port of [cPort, bPort, jPort]) {
        for (let i = 0; i < MEMORY_REQUESTS; i++) {
          const r = await probe(port)
          if (!r.ok) throw new Error(`request ${i} to port ${port} failed: ${r.error}`)
        }
      }
      await sleep(3000)
      samples.master.push(rssKiB(corral.proc.pid))
      samples.worker.push(rssKiB(workers[0]!))
      samples.bare.push(rssKiB(bare.proc.pid))
      samples.bareJs.push(rssKiB(bareJs.proc.pid))
      log(
        `round ${rep + 1}/${REPS} RSS: bare ${fmt1(mib(samples.bare.at(-1)!))} MiB, corral master ${fmt1(mib(samples.master.at(-1)!))} MiB, worker ${fmt1(mib(samples.worker.at(-1)!))} MiB; bare, handler in plain JS ${fmt1(mib(samples.bareJs.at(-1)!))} MiB`,
      )
    } finally {
      await corral.stop()
      await bare.stop()
      await bareJs.stop()
    }
  }
  return {
    samplesKiB: samples,
    medianMiB: {
      bare: mib(median(samples.bare)),
      master: mib(median(samples.master)),
      worker: mib(median(samples.worker)),
      bareJs: mib(median(samples.bareJs)),
    },
  }
}

// ---------------------------------------------------------------- 3. lifecycle

interface LifecycleResult {
  /** CPU (in cores) used by processes this run did not start, per measured event. */
  foreignCores: { launch: number[]; kill: number[]; hup: number[] }
  launchFirstOkMs: number[]
  launchReadyMs: number[]
  /** Reference: spawn of a bare node:http process (bench/servers/http.ts) → its first response. */
  bareFirstOkMs: number[]
  termExitMs: number[]
  downtimeMs: number[]
  downtimeFailures: Record<string, number>[]
  hupReloadMs: number[]
  hupOldGoneMs: number[]
  hupProbes: { ok: number; failed: Record<string, number> }[]
  median: {
    launchFirstOkMs: number
    launchReadyMs: number
    bareFirstOkMs: number
    termExitMs: number
    downtimeMs: number
    hupReloadMs: number
    hupOldGoneMs: number
  }
}

async function lifecycle(): Promise<LifecycleResult> {
  const r: Omit<LifecycleResult, 'median'> = {
    foreignCores: { launch: [], kill: [], hup: [] },
    launchFirstOkMs: [],
    launchReadyMs: [],
    bareFirstOkMs: [],
    termExitMs: [],
    downtimeMs: [],
    downtimeFailures: [],
    hupReloadMs: [],
    hupOldGoneMs: [],
    hupProbes: [],
  }

  // Launch with 4 workers → first answered request (fresh connection every 2 ms from spawn).
  for (let rep = 0; rep < LIFE_REPS; rep++) {
    const m = await cleanly(
      `launch ${rep + 1}`,
      async () => {
        const port = await freePort()
        const fc = foreignCpu()
        const t0 = now()
        const proc = start(NODE, [CORRAL, '-w', '4', '-b', `127.0.0.1:${port}`, HELLO], {
          cwd: SNAPSHOT,
          env: CORRAL_ENV,
        })
        try {
          const polled = pollUntilOk(port, { timeoutMs: 15_000, everyMs: 2 })
          const ready = proc.waitForLine(/Ready: 4 worker/, 15_000)
          const firstOk = (await polled).firstOk - t0
          const readyAt = (await ready) - t0
          const foreignCores = fc.end()
          trackDescendants(proc.pid)
          await sleep(200)
          const tTerm = now()
          const family = [proc.pid, ...descendants(proc.pid)]
          kill(proc.pid, 'SIGTERM')
          await until(() => family.every((p) => !running(p)), 15_000, 'corral to stop after TERM', 1)
          return { firstOk, readyAt, term: now() - tTerm, foreignCores }
        } finally {
          await stop(proc)
          await sleep(300)
        }
      },
      NOISY_CORES_LIFECYCLE,
    )
    r.launchFirstOkMs.push(m.firstOk)
    r.launchReadyMs.push(m.readyAt)
    r.termExitMs.push(m.term)
    r.foreignCores.launch.push(m.foreignCores)
    log(
      `launch ${rep + 1}/${LIFE_REPS}: first response ${fmt1(m.firstOk)} ms, "Ready" ${fmt1(m.readyAt)} ms, TERM → all exited ${fmt1(m.term)} ms${noiseNote(m.foreignCores, NOISY_CORES_LIFECYCLE)}`,
    )
  }

  // Reference: how long one fresh node process takes to serve the same handler.
  for (let rep = 0; rep < LIFE_REPS; rep++) {
    const m = await cleanly(
      `bare launch ${rep + 1}`,
      async () => {
        const port = await freePort()
        const fc = foreignCpu()
        const t0 = now()
        const proc = start(NODE, [HTTP_SERVER], {
          cwd: root,
          env: { ...process.env, PORT: String(port), HOST: '127.0.0.1' },
        })
        try {
          const firstOk = (await pollUntilOk(port, { timeoutMs: 15_000, everyMs: 2 })).firstOk - t0
          return { firstOk, foreignCores: fc.end() }
        } finally {
          await stop(proc)
          await sleep(300)
        }
      },
      NOISY_CORES_LIFECYCLE,
    )
    r.bareFirstOkMs.push(m.firstOk)
    log(
      `bare node:http launch ${rep + 1}/${LIFE_REPS}: first response ${fmt1(m.firstOk)} ms${noiseNote(m.foreignCores, NOISY_CORES_LIFECYCLE)}`,
    )
  }

  // SIGKILL the only worker → first successful response.
  {
    const port = await freePort()
    const corral = await startCorral(port, 1, false)
    try {
      for (let rep = 0; rep < LIFE_REPS; rep++) {
        const m = await cleanly(
          `worker kill ${rep + 1}`,
          async () => {
            const workers = children(corral.proc.pid)
            if (workers.length !== 1) throw new Error(`expected 1 corral worker, found ${workers.length}`)
            const victim = workers[0]!
            // corral counts a worker that dies within 5 s of its start towards
            // a crash streak and backs off before respawning it; the case
            // measured here is a settled worker being killed (OOM killer, …).
            await sleep(Math.max(0, KILL_MIN_AGE_MS - ageMs(victim)))
            const check = await probe(port)
            if (!check.ok) throw new Error(`corral not serving before the kill: ${check.error}`)
            const fc = foreignCpu()
            const t0 = now()
            kill(victim, 'SIGKILL')
            const out = await pollUntilOk(port, { timeoutMs: 15_000, everyMs: 2 })
            const foreignCores = fc.end()
            await until(() => children(corral.proc.pid).some((p) => p !== victim), 10_000, 'a replacement worker')
            trackDescendants(corral.proc.pid)
            return { downtime: out.firstOk - t0, out, foreignCores }
          },
          NOISY_CORES_LIFECYCLE,
        )
        r.downtimeMs.push(m.downtime)
        r.downtimeFailures.push(m.out.failures)
        r.foreignCores.kill.push(m.foreignCores)
        const f = Object.entries(m.out.failures)
          .map(([k, n]) => `${k} ${n}`)
          .join(', ')
        log(
          `kill ${rep + 1}/${LIFE_REPS}: next successful response ${fmt1(m.downtime)} ms after SIGKILL (${m.out.attempts} probes${f ? `; failed: ${f}` : ''})${noiseNote(m.foreignCores, NOISY_CORES_LIFECYCLE)}`,
        )
      }
    } finally {
      await corral.stop()
    }
  }

  // HUP with 4 workers → "Reload complete", and → every old worker exited.
  {
    const port = await freePort()
    const corral = await startCorral(port, 4, false)
    try {
      for (let rep = 0; rep < LIFE_REPS; rep++) {
        const m = await cleanly(
          `HUP ${rep + 1}`,
          async () => {
            await sleep(1000)
            const old = children(corral.proc.pid)
            if (old.length !== 4) throw new Error(`expected 4 corral workers before HUP, found ${old.length}`)
            const prober = backgroundProber(port, 5)
            await sleep(50)
            const fc = foreignCpu()
            const t0 = now()
            kill(corral.proc.pid, 'SIGHUP')
            const reloaded = corral.proc.waitForLine(/Reload complete/, 15_000, t0)
            const gone = until(
              () => {
                fc.sample() // note the old workers' CPU time before they vanish
                return old.every((p) => !running(p))
              },
              15_000,
              'the old workers to exit',
              1,
            )
            const [tReload, tGone] = await Promise.all([reloaded, gone])
            const foreignCores = fc.end()
            await sleep(50)
            const probes = await prober.stop()
            trackDescendants(corral.proc.pid)
            return {
              reload: tReload - t0,
              gone: tGone - t0,
              probes,
              workers: children(corral.proc.pid).length,
              foreignCores,
            }
          },
          NOISY_CORES_LIFECYCLE,
        )
        r.hupReloadMs.push(m.reload)
        r.hupOldGoneMs.push(m.gone)
        r.hupProbes.push(m.probes)
        r.foreignCores.hup.push(m.foreignCores)
        const f = Object.entries(m.probes.failed)
          .map(([k, n]) => `${k} ${n}`)
          .join(', ')
        log(
          `HUP ${rep + 1}/${LIFE_REPS}: "Reload complete" ${fmt1(m.reload)} ms, old workers gone ${fmt1(m.gone)} ms, ${m.workers} workers now; probes meanwhile ${m.probes.ok} ok${f ? `, failed: ${f}` : ''}${noiseNote(m.foreignCores, NOISY_CORES_LIFECYCLE)}`,
        )
      }
    } finally {
      await corral.stop()
    }
  }

  return {
    ...r,
    median: {
      launchFirstOkMs: median(r.launchFirstOkMs),
      launchReadyMs: median(r.launchReadyMs),
      bareFirstOkMs: median(r.bareFirstOkMs),
      termExitMs: median(r.termExitMs),
      downtimeMs: median(r.downtimeMs),
      hupReloadMs: median(r.hupReloadMs),
      hupOldGoneMs: median(r.hupOldGoneMs),
    },
  }
}

// ---------------------------------------------------------------- report

interface Check {
  name: string
  value: number
  target: string
  ok: boolean
}

function report(
  meta: Record<string, unknown>,
  tp?: ThroughputResult,
  mem?: MemoryResult,
  life?: LifecycleResult,
): { summary: Record<string, unknown>; checks: Check[] } {
  const out: string[] = []
  const checks: Check[] = []
  const check = (name: string, value: number, ok: boolean, target: string): string => {
    if (!Number.isFinite(value)) return 'n/a'
    checks.push({ name, value, target, ok })
    return `${mark(ok)} (target ${target})`
  }
  out.push(
    '',
    `corral bench — ${meta.date}`,
    `  ${meta.node} · wrk ${meta.wrk} · pm2 ${meta.pm2} · ${meta.cpus} · corral ${meta.corral}`,
    `  corral runs from: ${meta.corralEntry}, a copy of the working tree taken at the start (${meta.corralSources})`,
  )
  const summary: Record<string, unknown> = {}

  if (tp) {
    const m = tp.median
    out.push(
      '',
      `Throughput, req/s (median of ${REPS} × ${DURATION} s after ${WARMUP} s warm-up; servers on CPU ${SERVER_CPU}, wrk -t1 -c${CONNECTIONS} on CPU ${LOAD_CPU})`,
    )
    out.push(`  ${''.padEnd(30)}${'keep-alive'.padStart(12)}${'new conn/request'.padStart(19)}`)
    for (const s of serverNames)
      out.push(`  ${LABEL[s].padEnd(30)}${fmtInt(m[s]!.keepalive).padStart(12)}${fmtInt(m[s]!.close).padStart(19)}`)
    summary.throughput = m
    if (m.corral) {
      const ratio = (other: ServerName, shape: Shape) => (m[other] ? m.corral![shape] / m[other]![shape] : NaN)
      const ratios: Record<string, Record<Shape, number>> = {}
      out.push('')
      for (const other of ['bare', 'cluster', 'pm2'] as const) {
        if (!m[other]) continue
        const ka = ratio(other, 'keepalive')
        const cl = ratio(other, 'close')
        ratios[`corral/${other}`] = { keepalive: ka, close: cl }
        let kaNote = ''
        let clNote = ''
        if (other === 'bare') {
          kaNote = check('corral/bare keep-alive', ka, ka >= TARGET.vsBare, `≥ ${TARGET.vsBare}`)
          clNote = check('corral/bare new conn/request', cl, cl >= TARGET.vsBare, `≥ ${TARGET.vsBare}`)
        }
        if (other === 'cluster')
          clNote = check(
            'corral/cluster new conn/request',
            cl,
            cl >= TARGET.vsClusterClose,
            `≥ ${TARGET.vsClusterClose}`,
          )
        out.push(
          `  ${`corral / ${other}`.padEnd(30)}${fmt2(ka).padStart(12)} ${kaNote.padEnd(18)}${fmt2(cl).padStart(6)} ${clNote}`,
        )
      }
      summary.ratios = ratios
    }
    const errs: string[] = []
    for (const s of serverNames)
      for (const shape of SHAPES) {
        const e = tp.samples[s]![shape].reduce(
          (a, r) => a + r.errors.connect + r.errors.read + r.errors.write + r.errors.timeout + r.errors.non2xx,
          0,
        )
        if (e > 0) errs.push(`${LABEL[s]} ${SHAPE_LABEL[shape]}: ${e}`)
      }
    if (errs.length) out.push(`  wrk reported errors (summed over runs): ${errs.join('; ')}`)
    const noisy: string[] = []
    for (const s of serverNames)
      for (const shape of SHAPES)
        for (const r of tp.samples[s]![shape]) {
          if (r.foreignCores > NOISY_CORES)
            noisy.push(`${LABEL[s]} ${SHAPE_LABEL[shape]} ${fmtInt(r.rps)} req/s (${fmt2(r.foreignCores)} CPU)`)
        }
    if (noisy.length) out.push(`  ⚠ measured while other processes were using CPU: ${noisy.join('; ')}`)
  }

  if (mem) {
    const m = mem.medianMiB
    const dMaster = m.master - m.bare
    const dWorker = m.worker - m.bare
    out.push(
      '',
      `Memory, VmRSS (median of ${REPS}; after ${MEMORY_REQUESTS} sequential requests on fresh connections, then 3 s idle)`,
    )
    out.push(`  ${'bare node:http (ESM)'.padEnd(30)}${fmt1(m.bare).padStart(7)} MiB`)
    out.push(
      `  ${'corral master (-w 1)'.padEnd(30)}${fmt1(m.master).padStart(7)} MiB  ${(dMaster >= 0 ? '+' : '') + fmt1(dMaster)} MiB vs bare  ${check('master RSS − bare (MiB)', dMaster, dMaster <= TARGET.masterRssMiB, `≤ +${TARGET.masterRssMiB} MiB`)}`,
    )
    out.push(
      `  ${'corral worker'.padEnd(30)}${fmt1(m.worker).padStart(7)} MiB  ${(dWorker >= 0 ? '+' : '') + fmt1(dWorker)} MiB vs bare  ${check('worker RSS − bare (MiB)', dWorker, dWorker <= TARGET.workerRssMiB, `≤ +${TARGET.workerRssMiB} MiB`)}`,
    )
    out.push(
      `  ${'(bare, handler as plain .mjs)'.padEnd(30)}${fmt1(m.bareJs).padStart(7)} MiB  reference only: no TypeScript stripper loaded`,
    )
    summary.memoryMiB = { ...m, masterMinusBare: dMaster, workerMinusBare: dWorker }
  }

  if (life) {
    const m = life.median
    const hupFailed = life.hupProbes.reduce((a, p) => a + Object.values(p.failed).reduce((x, y) => x + y, 0), 0)
    const hupOk = life.hupProbes.reduce((a, p) => a + p.ok, 0)
    out.push('', `Lifecycle, ms (median of ${LIFE_REPS}; not pinned; fresh connection every 2 ms)`)
    out.push(
      `  ${'launch -w 4 → first response'.padEnd(42)}${fmt1(m.launchFirstOkMs).padStart(7)}  ${check('launch → first response (ms)', m.launchFirstOkMs, m.launchFirstOkMs <= TARGET.firstRequestMs, `≤ ${TARGET.firstRequestMs}`)}`,
    )
    out.push(`  ${'launch -w 4 → "Ready: 4 worker(s)"'.padEnd(42)}${fmt1(m.launchReadyMs).padStart(7)}`)
    out.push(
      `  ${'(bare node:http: spawn → first response)'.padEnd(42)}${fmt1(m.bareFirstOkMs).padStart(7)}  reference: one fresh node process, same handler`,
    )
    out.push(
      `  ${'SIGKILL only worker → next response'.padEnd(42)}${fmt1(m.downtimeMs).padStart(7)}  ${check('killed worker downtime (ms)', m.downtimeMs, m.downtimeMs <= TARGET.downtimeMs, `≤ ${TARGET.downtimeMs}`)}`,
    )
    out.push(
      `  ${'HUP -w 4 → "Reload complete"'.padEnd(42)}${fmt1(m.hupReloadMs).padStart(7)}  ${check('HUP → reload complete (ms)', m.hupReloadMs, m.hupReloadMs <= TARGET.hupMs, `≤ ${TARGET.hupMs}`)}`,
    )
    out.push(
      `  ${'HUP -w 4 → all old workers exited'.padEnd(42)}${fmt1(m.hupOldGoneMs).padStart(7)}  ${check('HUP → old workers exited (ms)', m.hupOldGoneMs, m.hupOldGoneMs <= TARGET.hupMs, `≤ ${TARGET.hupMs}`)}`,
    )
    out.push(`  ${'TERM (-w 4, idle) → all processes exited'.padEnd(42)}${fmt1(m.termExitMs).padStart(7)}`)
    out.push(`  probes during the HUPs: ${hupOk} ok, ${hupFailed} failed`)
    const fc = life.foreignCores
    const worst = Math.max(...fc.launch, ...fc.kill, ...fc.hup)
    if (worst > NOISY_CORES_LIFECYCLE)
      out.push(
        `  ⚠ other processes used up to ${fmt2(worst)} CPU during these measurements (launch ${fc.launch.map(fmt2).join('/')}, kill ${fc.kill.map(fmt2).join('/')}, HUP ${fc.hup.map(fmt2).join('/')})`,
      )
    summary.lifecycleMs = m
    summary.hupProbes = { ok: hupOk, failed: hupFailed }
  }

  const passed = checks.filter((c) => c.ok).length
  out.push(
    '',
    `Targets: ${passed}/${checks.length} met${
      checks.some((c) => !c.ok)
        ? ` — missed: ${checks
            .filter((c) => !c.ok)
            .map((c) => c.name)
            .join('; ')}`
        : ''
    }`,
  )
  console.log(out.join('\n'))
  return { summary: { ...summary, targetsMet: passed, targetsTotal: checks.length }, checks }
}

// ---------------------------------------------------------------- main

function preflight(): void {
  const problems: string[] = []
  const major = Number(process.versions.node.split('.')[0])
  if (major < 24)
    problems.push(
      `running under Node ${process.version} (${NODE}); use the project's pinned Node 24: \`npm run bench\` or \`npx node bench/run.ts\``,
    )
  if (!which('taskset'))
    problems.push(
      'taskset is missing (package util-linux): the benchmark pins servers and load generator to separate CPUs',
    )
  if (sections.has('throughput') || sections.has('memory')) {
    if (!which('wrk')) problems.push('wrk is missing: install it (e.g. `apt-get install -y wrk`)')
  }
  if (sections.has('throughput') && serverNames.includes('pm2') && !existsSync(PM2))
    problems.push('pm2 is missing: run `npm install` (it is a devDependency)')
  if (cpus().length < 2) problems.push(`only ${cpus().length} CPU: pinning needs at least 2`)
  const needsCorral =
    sections.has('memory') ||
    sections.has('lifecycle') ||
    (sections.has('throughput') && serverNames.includes('corral'))
  if (needsCorral) {
    const err = snapshotCorral()
    if (err) problems.push(err)
    else {
      const v = spawnSync(NODE, [CORRAL, '--version'], {
        encoding: 'utf8',
        timeout: 15_000,
        cwd: SNAPSHOT,
        env: CORRAL_ENV,
      })
      if (v.status !== 0)
        problems.push(
          `corral does not start (\`node bin/corral.js --version\` in the snapshot exited ${v.status ?? v.signal}):\n${(v.stderr || v.stdout).split('\n').slice(0, 8).join('\n')}`,
        )
    }
  }
  for (const s of serverNames) if (!(s in LABEL)) problems.push(`unknown server "${s}" (bare, corral, cluster, pm2)`)
  if (problems.length) {
    console.error(`bench: cannot run:\n${problems.map((p) => `  - ${p}`).join('\n')}`)
    process.exit(2)
  }
}

const snapshotInfo = { sources: '?', entry: '?' }

/** Copy what corral runs from into SNAPSHOT and build its bundle there; returns a problem, if any. */
function snapshotCorral(): string | undefined {
  rmSync(SNAPSHOT, { recursive: true, force: true })
  mkdirSync(SNAPSHOT, { recursive: true })
  for (const p of ['bin', 'src', 'machines', 'package.json'])
    cpSync(join(root, p), join(SNAPSHOT, p), { recursive: true })
  const hash = createHash('sha256')
  for (const dir of ['bin', 'src', 'machines']) {
    // Recursive: src/ has a folder per process and concern.
    for (const f of (readdirSync(join(SNAPSHOT, dir), { recursive: true }) as string[]).sort()) {
      if (statSync(join(SNAPSHOT, dir, f)).isDirectory()) continue
      hash.update(`${dir}/${f}\0`)
      hash.update(readFileSync(join(SNAPSHOT, dir, f)))
    }
  }
  snapshotInfo.sources = `sha256:${hash.digest('hex').slice(0, 12)}`
  if (opt['from-source']) {
    snapshotInfo.entry = 'TypeScript sources (CORRAL_FROM_SOURCE=1)'
    return undefined
  }
  // scripts/build.ts bundles relative to its own location: run a copy of it.
  mkdirSync(join(SNAPSHOT, 'scripts'))
  cpSync(join(root, 'scripts/build.ts'), join(SNAPSHOT, 'scripts/build.ts'))
  const b = spawnSync(NODE, [join(SNAPSHOT, 'scripts/build.ts')], { encoding: 'utf8', timeout: 120_000, cwd: SNAPSHOT })
  if (b.status !== 0 || !existsSync(join(SNAPSHOT, 'dist/cli.js')))
    return `building corral's bundle (scripts/build.ts) failed:\n${b.stderr || b.stdout}`
  snapshotInfo.entry = 'bundle (scripts/build.ts, as in dist/)'
  return undefined
}

function cleanup(): void {
  if (pm2Home) {
    spawnSync(NODE, [PM2, 'kill'], { env: pm2Env(pm2Home), timeout: 20_000, stdio: 'ignore' })
    rmSync(pm2Home, { recursive: true, force: true })
    pm2Home = undefined
  }
  const killed = killAllTracked()
  if (killed.length) console.error(`bench: killed leftover processes: ${killed.join(', ')}`)
  rmSync(SNAPSHOT, { recursive: true, force: true })
}

for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(sig, () => {
    console.error(`\nbench: ${sig}, cleaning up`)
    cleanup()
    process.exit(130)
  })
}
process.on('exit', () => void killAllTracked())

async function main(): Promise<void> {
  preflight()
  const cpuModel = cpus()[0]?.model ?? '?'
  const dirty = sh('git', ['status', '--porcelain', '--untracked-files=no', '--', 'src', 'bin', 'machines']) !== ''
  const meta = {
    date: new Date().toISOString(),
    node: `Node ${process.version}`,
    nodePath: NODE,
    wrk: spawnSync('wrk', ['-v'], { encoding: 'utf8', timeout: 5000 }).stdout?.split('\n')[0]?.split(' ')[1] ?? '?',
    pm2: (JSON.parse(readFileSync(join(root, 'node_modules/pm2/package.json'), 'utf8')) as { version: string }).version,
    cpus: `${cpus().length} × ${cpuModel}`,
    kernel: sh('uname', ['-r']),
    corral: `${sh('git', ['rev-parse', '--short', 'HEAD'])}${dirty ? ' + uncommitted changes' : ''}`,
    corralEntry: snapshotInfo.entry,
    corralSources: snapshotInfo.sources,
    options: {
      reps: REPS,
      lifecycleReps: LIFE_REPS,
      duration: DURATION,
      warmup: WARMUP,
      connections: CONNECTIONS,
      serverCpu: SERVER_CPU,
      loadCpu: LOAD_CPU,
    },
  }
  console.error(`bench: ${meta.node} (${NODE}), sections: ${[...sections].join(', ')}`)
  let tp: ThroughputResult | undefined
  let mem: MemoryResult | undefined
  let life: LifecycleResult | undefined
  try {
    if (sections.has('throughput')) {
      console.error('bench: throughput')
      tp = await throughput()
    }
    if (sections.has('memory')) {
      console.error('bench: memory')
      mem = await memory()
    }
    if (sections.has('lifecycle')) {
      console.error('bench: lifecycle')
      life = await lifecycle()
    }
  } finally {
    cleanup()
  }
  const { summary, checks } = report(meta, tp, mem, life)
  const result = { meta, summary, checks, raw: { throughput: tp, memory: mem, lifecycle: life } }
  console.log(`\nJSON ${JSON.stringify({ date: meta.date, node: process.version, corral: meta.corral, ...summary })}`)
  mkdirSync(join(root, 'bench/results'), { recursive: true })
  writeFileSync(join(root, 'bench/results/latest.json'), `${JSON.stringify(result, null, 2)}\n`)
  console.error('bench: wrote bench/results/latest.json')
  const left = trackedStillRunning()
  if (left.length) console.error(`bench: WARNING: processes still running after cleanup: ${left.join(', ')}`)
}

main().catch((e: unknown) => {
  console.error(`bench: failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`)
  cleanup()
  process.exit(1)
})
