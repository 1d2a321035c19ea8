// The USR2 hand-over as a user feels it: `corral -w 4` under steady load
// (new connection per request, and keep-alive), USR2 → new master serving →
// WINCH → QUIT, timed at each step, with every failed request counted.
//   npm run bench:upgrade        (node bench/upgrade.ts [rounds])
// Not part of `npm test`: figures, not assertions.
import { spawn, type ChildProcess } from 'node:child_process'
import { copyFileSync, mkdtempSync, readFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { fileURLToPath } from 'node:url'
import { startLoad } from '../test/helpers/load.ts'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const BIN = `${ROOT}bin/corral.js`
const ROUNDS = Number(process.argv[2] ?? 3)
const WORKERS = 4

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number }
      s.close(() => resolve(port))
    })
  })
}

const pidIn = (path: string) => {
  try {
    return Number(readFileSync(path, 'utf8').trim()) || undefined
  } catch {
    return undefined
  }
}

function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z'
  } catch {
    return false
  }
}

async function until(probe: () => boolean, timeoutMs = 30_000): Promise<void> {
  const end = Date.now() + timeoutMs
  while (!probe()) {
    if (Date.now() > end) throw new Error('timed out')
    await sleep(2)
  }
}

interface Round {
  readyMs: number
  handoverMs: number
  ok: number
  failed: number
}

async function round(keepAlive: boolean): Promise<Round> {
  const dir = mkdtempSync('/tmp/corral-bench-upgrade-')
  const app = `${dir}/app.ts`
  copyFileSync(`${ROOT}test/fixtures/app-pid.ts`, app)
  const pidfile = `${dir}/corral.pid`
  const port = await freePort()
  const old: ChildProcess = spawn(
    process.execPath,
    [BIN, '-w', String(WORKERS), '-b', `127.0.0.1:${port}`, '-p', pidfile, app],
    { stdio: 'ignore' },
  )
  let fresh: number | undefined
  try {
    await until(() => pidIn(pidfile) === old.pid)
    const load = startLoad(`http://127.0.0.1:${port}/`, { connections: 8, keepAlive })
    await sleep(500)
    const t0 = performance.now()
    old.kill('SIGUSR2')
    await until(() => {
      const pid = pidIn(pidfile)
      if (pid !== undefined && pid !== old.pid) fresh = pid
      return fresh !== undefined
    })
    const readyMs = performance.now() - t0
    old.kill('SIGWINCH')
    old.kill('SIGQUIT')
    await until(() => !alive(old.pid!))
    const handoverMs = performance.now() - t0
    await sleep(500)
    const { ok, failed } = await load.stop()
    return { readyMs, handoverMs, ok, failed }
  } finally {
    old.kill('SIGKILL')
    if (fresh !== undefined) {
      try {
        process.kill(fresh, 'SIGTERM')
      } catch {
        // gone
      }
      await until(() => !alive(fresh!), 40_000).catch(() => process.kill(fresh!, 'SIGKILL'))
    }
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!

const results: Record<string, unknown> = {}
for (const keepAlive of [false, true]) {
  const rounds: Round[] = []
  for (let i = 0; i < ROUNDS; i++) rounds.push(await round(keepAlive))
  const shape = keepAlive ? 'keep-alive' : 'new connection per request'
  const line = {
    readyMs: Math.round(median(rounds.map((r) => r.readyMs))),
    handoverMs: Math.round(median(rounds.map((r) => r.handoverMs))),
    requests: rounds.reduce((n, r) => n + r.ok + r.failed, 0),
    failed: rounds.reduce((n, r) => n + r.failed, 0),
  }
  results[shape] = line
  console.log(
    `USR2 hand-over of ${WORKERS} workers, ${shape}: new master serving after ${line.readyMs} ms, ` +
      `old master gone after ${line.handoverMs} ms (median of ${ROUNDS}); ${line.failed} failed of ${line.requests} requests`,
  )
}
console.log(JSON.stringify({ bench: 'upgrade', node: process.version, workers: WORKERS, rounds: ROUNDS, results }))
