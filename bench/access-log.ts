// The request path's cost: corral -w 1 serving bench/hello.ts with no access
// log, with the default format to a file, as JSON lines to a file, with
// StatsD on (to a UDP listener in this process), and the same response from a
// fetch handler (bench/hello-fetch.ts), in the same run, interleaved, with
// bare node:http for scale. Server pinned to CPU 0, wrk (32 connections) to
// CPU 1, in both shapes: keep-alive, and a new connection per request
// (`Connection: close`), one after the other against the same server. Each
// round runs the servers in a rotated order. Also the cost
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
import { createSocket } from 'node:dgram'
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
// A StatsD listener for --statsd-host, as a real agent would be: it reads and drops.
const statsd = createSocket('udp4')
let statsdDatagrams = 0
statsd.on('message', () => statsdDatagrams++)
await new Promise<void>((resolve) => statsd.bind(0, '127.0.0.1', resolve))
const STATSD = `127.0.0.1:${statsd.address().port}`
const CONNECTIONS = 32
const SHAPES = [
  { name: 'keep-alive', close: false },
  { name: 'new conn/request', close: true },
] as const

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
  { name: 'corral, StatsD on', args: corral(['--statsd-host', STATSD]), corral: true },
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

interface Sample {
  rps: number
  usPerReq: number
  foreign: number
}

/** One server, started afresh, measured in each shape after a warm-up in that shape. */
async function measure(config: Config): Promise<Sample[]> {
  const port = await freePort()
  const proc: Proc = start('taskset', ['-c', '0', process.execPath, ...config.args(port)], {
    env: { ...process.env, PORT: String(port), ...config.env },
  })
  try {
    await ready(port)
    const serving = config.corral ? children(proc.pid)[0] : proc.pid
    if (serving === undefined) throw new Error(`${config.name}: no worker found`)
    const samples: Sample[] = []
    for (const shape of SHAPES) {
      await wrk({ port, cpu: '1', connections: CONNECTIONS, seconds: 1, close: shape.close })
      const foreign = foreignCpu()
      const before = cpuTicks(serving)
      const r = await wrk({ port, cpu: '1', connections: CONNECTIONS, seconds: SECONDS, close: shape.close })
      const ticks = cpuTicks(serving) - before
      samples.push({ rps: r.rps, usPerReq: (ticks * 10_000) / r.requests, foreign: foreign.end() })
    }
    return samples
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
  const key = (config: string, shape: string) => `${config} | ${shape}`
  const results = new Map<string, { rps: number[]; us: number[]; foreign: number[] }>(
    CONFIGS.flatMap((c) => SHAPES.map((sh) => [key(c.name, sh.name), { rps: [], us: [], foreign: [] }] as const)),
  )
  for (let rep = 1; rep <= REPS; rep++) {
    // Rotated, so that no server is always first or last in a round.
    const order = CONFIGS.map((_, i) => CONFIGS[(i + rep - 1) % CONFIGS.length]!)
    for (const config of order) {
      const samples = await measure(config)
      for (const [i, shape] of SHAPES.entries()) {
        const m = samples[i]!
        const r = results.get(key(config.name, shape.name))!
        r.rps.push(m.rps)
        r.us.push(m.usPerReq)
        r.foreign.push(m.foreign)
        console.error(
          `rep ${rep}: ${config.name}, ${shape.name}: ${Math.round(m.rps)} req/s, ${m.usPerReq.toFixed(2)} µs CPU/req (other processes: ${m.foreign.toFixed(2)} cores)`,
        )
      }
    }
  }
  const summary: Record<string, { rps: number; vsBare: number; usPerReq: number; vsBareCpu: number }> = {}
  for (const shape of SHAPES) {
    const bare = results.get(key('bare node:http', shape.name))!
    const base = results.get(key('corral, no access log', shape.name))!
    const [bareRps, bareUs, baseRps, baseUs] = [median(bare.rps), median(bare.us), median(base.rps), median(base.us)]
    console.log(
      `\nrequest-path cost, ${shape.name}, ${REPS} rounds × ${SECONDS} s, medians (wrk ${CONNECTIONS} connections, server on 1 CPU)`,
    )
    console.log(
      '| server | req/s | vs bare | vs corral without log | µs CPU per request | vs bare (CPU) | vs corral without log (CPU) | other load (cores) |',
    )
    console.log('|---|---|---|---|---|---|---|---|')
    for (const config of CONFIGS) {
      const r = results.get(key(config.name, shape.name))!
      const rps = median(r.rps)
      const us = median(r.us)
      summary[key(config.name, shape.name)] = { rps, vsBare: rps / bareRps, usPerReq: us, vsBareCpu: bareUs / us }
      console.log(
        `| ${config.name} | ${Math.round(rps)} | ${(rps / bareRps).toFixed(2)} | ${(rps / baseRps).toFixed(2)} | ${us.toFixed(2)} | ${(bareUs / us).toFixed(2)} | ${(baseUs / us).toFixed(2)} | ${median(r.foreign).toFixed(2)} |`,
      )
    }
  }
  console.log(`\nStatsD datagrams received by the bench's listener: ${statsdDatagrams}`)
  console.log(`JSON ${JSON.stringify(summary)}`)
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
  statsd.close()
  rmSync(dir, { recursive: true, force: true })
}
