// The request path's cost: corral -w 1 serving bench/hello.ts with no access
// log, with the default format to a file, as JSON lines to a file, and the
// same response from a fetch handler (bench/hello-fetch.ts), in the same run, interleaved, with bare node:http for scale. Server
// pinned to CPU 0, wrk (keep-alive, 50 connections) to CPU 1. Also the cost
// of what `corral ctl` and --metrics-bind need: corral counts requests by
// default (the control socket is on), --no-control-socket counts nothing,
// --metrics-bind also times them; and the master's RSS with and without
// --metrics-bind after a scrape. Reports the
// median requests/s and the worker's CPU time per request (utime + stime of
// the serving process over the timed run: steadier than throughput when the
// machine has other work), and each against corral without the log.
//   node bench/access-log.ts [reps] [seconds]
// Not part of `npm test`: figures, not assertions.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { children, foreignCpu, killAllTracked, start, stop, type Proc } from './lib/proc.ts'
import { wrk } from './lib/wrk.ts'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const REPS = Number(process.argv[2] ?? 5)
const SECONDS = Number(process.argv[3] ?? 5)
const dir = mkdtempSync(join(tmpdir(), 'corral-bench-access-'))
// One port for --metrics-bind, reused: the configurations run one at a time.
const METRICS_PORT = await freePort()

interface Config {
  name: string
  args: (port: number) => string[]
  env?: NodeJS.ProcessEnv
  /** The process that serves: corral's worker, or the bare server itself. */
  corral: boolean
}

const corral = (extra: string[]) => (port: number) => [
  `${ROOT}bin/corral.js`,
  '-w',
  '1',
  '-b',
  `127.0.0.1:${port}`,
  ...extra,
  `${ROOT}bench/hello.ts`,
]
const CONFIGS: Config[] = [
  { name: 'bare node:http', args: () => [`${ROOT}bench/servers/http.ts`], corral: false },
  { name: 'corral, no access log', args: corral([]), corral: true },
  {
    name: 'corral, access log (default format)',
    args: corral(['--access-logfile', join(dir, 'text.log')]),
    corral: true,
  },
  {
    name: 'corral, access log (JSON lines)',
    args: corral(['--access-logfile', join(dir, 'json.log'), '--access-log-json']),
    corral: true,
  },
  { name: 'corral, nothing counted (--no-control-socket)', args: corral(['--no-control-socket']), corral: true },
  { name: 'corral, metrics', args: corral(['--metrics-bind', `127.0.0.1:${METRICS_PORT}`]), corral: true },
  {
    name: 'corral, access log + metrics',
    args: corral(['--access-logfile', join(dir, 'both.log'), '--metrics-bind', `127.0.0.1:${METRICS_PORT}`]),
    corral: true,
  },
  // The same response from a fetch(Request) → Response handler, no access log.
  {
    name: 'corral, fetch handler',
    args: (port) => [`${ROOT}bin/corral.js`, '-w', '1', '-b', `127.0.0.1:${port}`, `${ROOT}bench/hello-fetch.ts`],
    corral: true,
  },
]

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number }
      s.close(() => resolve(port))
    })
  })
}

function cpuTicks(pid: number): number {
  const s = readFileSync(`/proc/${pid}/stat`, 'utf8')
  const rest = s.slice(s.lastIndexOf(')') + 2).split(' ')
  return Number(rest[11]) + Number(rest[12])
}

async function ready(port: number): Promise<void> {
  for (let i = 0; i < 150; i++) {
    const ok = await fetch(`http://127.0.0.1:${port}/`).then(
      (r) => r.ok,
      () => false,
    )
    if (ok) return
    await new Promise((r) => setTimeout(r, 100))
  }
  throw new Error(`nothing serving on ${port}`)
}

async function measure(config: Config): Promise<{ rps: number; usPerReq: number; foreign: number }> {
  const port = await freePort()
  const proc: Proc = start('taskset', ['-c', '0', process.execPath, ...config.args(port)], {
    env: { ...process.env, PORT: String(port), ...config.env },
  })
  try {
    await ready(port)
    const serving = config.corral ? children(proc.pid)[0] : proc.pid
    if (serving === undefined) throw new Error(`${config.name}: no worker found`)
    await wrk({ port, cpu: '1', connections: 50, seconds: 1, close: false })
    const foreign = foreignCpu()
    const before = cpuTicks(serving)
    const r = await wrk({ port, cpu: '1', connections: 50, seconds: SECONDS, close: false })
    const ticks = cpuTicks(serving) - before
    return { rps: r.rps, usPerReq: (ticks * 10_000) / r.requests, foreign: foreign.end() }
  } finally {
    await stop(proc)
  }
}

/** The master's RSS in MB once serving, after one scrape of /metrics when it has them. */
async function masterRssMb(extra: string[]): Promise<number> {
  const port = await freePort()
  const proc = start(process.execPath, corral(extra)(port), { env: process.env })
  try {
    await ready(port)
    if (extra.includes('--metrics-bind')) await (await fetch(`http://127.0.0.1:${METRICS_PORT}/metrics`)).text()
    const status = readFileSync(`/proc/${proc.pid}/status`, 'utf8')
    return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1]) / 1024
  } finally {
    await stop(proc)
  }
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b)
  const m = Math.floor(s.length / 2)
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2
}

try {
  const results = new Map<string, { rps: number[]; us: number[]; foreign: number[] }>(
    CONFIGS.map((c) => [c.name, { rps: [], us: [], foreign: [] }]),
  )
  for (let rep = 1; rep <= REPS; rep++) {
    for (const config of CONFIGS) {
      const m = await measure(config)
      const r = results.get(config.name)!
      r.rps.push(m.rps)
      r.us.push(m.usPerReq)
      r.foreign.push(m.foreign)
      console.error(
        `rep ${rep}: ${config.name}: ${Math.round(m.rps)} req/s, ${m.usPerReq.toFixed(2)} µs CPU/req (other processes: ${m.foreign.toFixed(2)} cores)`,
      )
    }
  }
  const base = results.get('corral, no access log')!
  const baseRps = median(base.rps)
  const baseUs = median(base.us)
  const bare = results.get('bare node:http')!
  const bareRps = median(bare.rps)
  const bareUs = median(bare.us)
  console.log(`\nrequest-path cost, ${REPS} reps × ${SECONDS} s, medians (keep-alive, 50 connections, server on 1 CPU)`)
  console.log(
    '| server | req/s | vs bare | vs corral without log | µs CPU per request | vs bare (CPU) | vs corral without log (CPU) | other load (cores) |',
  )
  console.log('|---|---|---|---|---|---|---|---|')
  for (const [name, r] of results) {
    const rps = median(r.rps)
    const us = median(r.us)
    console.log(
      `| ${name} | ${Math.round(rps)} | ${(rps / bareRps).toFixed(2)} | ${(rps / baseRps).toFixed(2)} | ${us.toFixed(2)} | ${(bareUs / us).toFixed(2)} | ${(baseUs / us).toFixed(2)} | ${median(r.foreign).toFixed(2)} |`,
    )
  }
  const rss = { off: [] as number[], on: [] as number[] }
  for (let rep = 1; rep <= REPS; rep++) {
    rss.off.push(await masterRssMb([]))
    rss.on.push(await masterRssMb(['--metrics-bind', `127.0.0.1:${METRICS_PORT}`]))
  }
  const [off, on] = [median(rss.off), median(rss.on)]
  console.log(
    `\nmaster RSS after start (and one scrape): ${off.toFixed(1)} MB without metrics, ${on.toFixed(1)} MB with --metrics-bind (+${(on - off).toFixed(1)} MB)`,
  )
} finally {
  killAllTracked()
  rmSync(dir, { recursive: true, force: true })
}
