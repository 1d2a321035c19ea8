// The dirty pool's figures (spec/dirty.md), in one run (npm run bench:dirty):
// round trips of a no-op call and of a 1 MB Buffer (p50, p99) and calls per
// second from 4 HTTP workers, against piscina (threads in one process: the
// upper bound) and a plain call relayed through a middle process over IPC
// (what routing calls through the master would cost); then the HTTP path
// with a dirty pool configured but idle against none. A loaded machine
// inflates every figure: compare the ratios within one run.
import { fork } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { Piscina } from 'piscina'
import { freePort } from './lib/probe.ts'
import { kill, start, track } from './lib/proc.ts'
import { wrk } from './lib/wrk.ts'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const BIN = `${ROOT}bin/corral.js`
const N_NOOP = Number(process.env.N_NOOP ?? 2000)
const N_BUF = Number(process.env.N_BUF ?? 200)
const N_TPUT = Number(process.env.N_TPUT ?? 5000)
const WRK_SECONDS = Number(process.env.WRK_SECONDS ?? 5)
const BUF = Buffer.alloc(1024 * 1024, 7)

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? Number.NaN
}
const summary = (xs: number[]) => ({ p50: pct(xs, 50), p99: pct(xs, 99) })
const ms = (x: number) => `${x.toFixed(3)} ms`

async function untilAnswers(url: string): Promise<void> {
  for (;;) {
    const ok = await fetch(url).then(
      (r) => r.ok,
      () => false,
    )
    if (ok) return
    await new Promise((r) => setTimeout(r, 100))
  }
}

async function corral(args: string[]): Promise<{ port: number; stop: () => Promise<void> }> {
  const port = await freePort()
  const proc = start(process.execPath, [BIN, '--bind', `127.0.0.1:${port}`, '--no-control-socket', ...args], {
    cwd: ROOT,
  })
  track(proc.pid)
  await untilAnswers(`http://127.0.0.1:${port}/`)
  return {
    port,
    stop: async () => {
      kill(proc.pid, 'SIGTERM')
      await proc.exited
    },
  }
}

const get = async <T>(port: number, path: string): Promise<T> =>
  (await fetch(`http://127.0.0.1:${port}${path}`)).json() as Promise<T>

// --- corral's dirty pool: 4 HTTP workers, 1 dirty worker
const dirtyArgs = ['-w', '4', '--dirty-app', 'echo=bench/servers/dirty-target.ts', 'bench/servers/dirty-bench-app.ts']
const pool = await corral(dirtyArgs)
// The first call waits for the dirty worker; then warm up.
await get(pool.port, '/rt?kind=noop&n=200')
const dirtyNoop = summary((await get<{ times: number[] }>(pool.port, `/rt?kind=noop&n=${N_NOOP}`)).times)
const dirtyBuf = summary((await get<{ times: number[] }>(pool.port, `/rt?kind=buf&n=${N_BUF}`)).times)
const t0 = performance.now()
const tputs = await Promise.all(
  [1, 2, 3, 4].map(() => get<{ calls: number; pid: number }>(pool.port, `/tput?n=${N_TPUT}&c=8`)),
)
const dirtyRate = (tputs.length * N_TPUT) / ((performance.now() - t0) / 1000)
const callers = new Set(tputs.map((t) => t.pid)).size
await pool.stop()

// --- piscina: one thread, called from this process
const piscina = new Piscina({ filename: `${ROOT}bench/servers/piscina-echo.mjs`, minThreads: 1, maxThreads: 1 })
const timeEach = async (n: number, call: () => Promise<unknown>) => {
  const times: number[] = []
  for (let i = 0; i < n; i++) {
    const t = performance.now()
    await call()
    times.push(performance.now() - t)
  }
  return times
}
await timeEach(200, () => piscina.run(0))
const piscinaNoop = summary(await timeEach(N_NOOP, () => piscina.run(0)))
const piscinaBuf = summary(await timeEach(N_BUF, () => piscina.run(BUF)))
const t1 = performance.now()
let left = 4 * N_TPUT
await Promise.all(
  Array.from({ length: 32 }, async () => {
    while (left-- > 0) await piscina.run(0)
  }),
)
const piscinaRate = (4 * N_TPUT) / ((performance.now() - t1) / 1000)
await piscina.destroy()

// --- a relay: caller → middle process → target over IPC, and back
const relay = fork(`${ROOT}bench/servers/ipc-relay.mjs`, [], { serialization: 'advanced' })
const pending: ((v: unknown) => void)[] = []
relay.on('message', (m) => pending.shift()?.(m))
const viaRelay = (value: unknown) =>
  new Promise((resolve) => {
    pending.push(resolve)
    relay.send(value as never)
  })
await timeEach(200, () => viaRelay(0))
const relayNoop = summary(await timeEach(N_NOOP, () => viaRelay(0)))
const relayBuf = summary(await timeEach(N_BUF, () => viaRelay(BUF)))
relay.disconnect()

// --- the HTTP path: a dirty pool configured but idle, against none
// Twice each, alternating, so a change in the machine's load hits both alike;
// the pool is idle but booted (a dirty worker still loading would be measured too).
const cpu = process.env.WRK_CPU ?? '0'
const httpRps = { without: 0, idle: 0 }
for (let round = 0; round < 2; round++) {
  for (const kind of ['without', 'idle'] as const) {
    const server = await corral(kind === 'idle' ? dirtyArgs : ['-w', '4', 'bench/servers/dirty-bench-app.ts'])
    if (kind === 'idle') await get(server.port, '/rt?kind=noop&n=1')
    httpRps[kind] += (await wrk({ port: server.port, cpu, connections: 32, seconds: WRK_SECONDS, close: false })).rps
    await server.stop()
  }
}
const withoutPool = { rps: httpRps.without / 2 }
const withPool = { rps: httpRps.idle / 2 }

console.log(`Dirty pool bench (machine load inflates every figure; compare the ratios)
| | no-op p50 | no-op p99 | 1 MB p50 | 1 MB p99 | calls/s |
|---|---|---|---|---|---|
| corral dirty pool (HTTP worker → dirty worker) | ${ms(dirtyNoop.p50)} | ${ms(dirtyNoop.p99)} | ${ms(dirtyBuf.p50)} | ${ms(dirtyBuf.p99)} | ${dirtyRate.toFixed(0)} (from ${callers} HTTP worker(s)) |
| piscina, 1 thread, same process | ${ms(piscinaNoop.p50)} | ${ms(piscinaNoop.p99)} | ${ms(piscinaBuf.p50)} | ${ms(piscinaBuf.p99)} | ${piscinaRate.toFixed(0)} |
| relayed through a middle process (IPC) | ${ms(relayNoop.p50)} | ${ms(relayNoop.p99)} | ${ms(relayBuf.p50)} | ${ms(relayBuf.p99)} | - |
ratios: no-op p50 dirty/piscina ${(dirtyNoop.p50 / piscinaNoop.p50).toFixed(2)} (goal ≤ 2), calls/s dirty/piscina ${(dirtyRate / piscinaRate).toFixed(2)} (goal ≥ 0.5), no-op p50 dirty/relay ${(dirtyNoop.p50 / relayNoop.p50).toFixed(2)}
HTTP path req/s: without a dirty pool ${withoutPool.rps.toFixed(0)}, with one configured but idle ${withPool.rps.toFixed(0)}: ratio ${(withPool.rps / withoutPool.rps).toFixed(3)} (goal ≥ 0.98)`)
process.exit(0)
