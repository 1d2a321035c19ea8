// Start-up as a user of the installed package feels it, against a bare
// node:http process started the same way in the same run:
//   launch (-w 4) → first response        target ≤ 2.5 × bare spawn → first response
//   SIGKILL a settled worker → next response   target ≤ bare spawn + 10 ms
//   master RSS, worker RSS (-w 1, after 200 requests)   ≤ bare + 5 MiB, ≤ bare + 3 MiB
//   `npx corral --version`                     ≤ 1.2 × `npx` of a trivial bin
// corral is the packed tarball (npm pack, which builds dist/) installed into a
// fresh app in a temp dir; the app is a hello handler in a .mjs file, and the
// bare server is bench/servers/http-js.mjs, the same handler. Everything runs
// under this Node (process.execPath), never npx for the servers. Prints the
// figures (median of --reps rounds) and the ratios; asserts nothing.
//
//   npm run bench:startup [-- --reps 5]
import { execFileSync, spawnSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { parseArgs } from 'node:util'
import { fileURLToPath } from 'node:url'
import { freePort, pollUntilOk, probe } from './lib/probe.ts'
import { ageMs, children, killAllTracked, now, rssKiB, sleep, start, stop } from './lib/proc.ts'

const { values: opt } = parseArgs({ options: { reps: { type: 'string', default: '5' } } })
const REPS = Number(opt.reps)
const ROOT = fileURLToPath(new URL('..', import.meta.url))
const NODE = process.execPath
const HELLO = `${ROOT}bench/servers/http-js.mjs`
const env: NodeJS.ProcessEnv = {
  ...process.env,
  PATH: `${dirname(NODE)}:${process.env.PATH}`,
  npm_config_update_notifier: 'false',
}
delete env.CORRAL_CMD_ARGS
delete env.PORT

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2
}
const ms = (x: number) => `${x.toFixed(1)} ms`
const mib = (kib: number) => `${(kib / 1024).toFixed(1)} MiB`

/** An app dir with corral installed from its packed tarball, a hello app, and a trivial bin for npx. */
function installApp(dir: string): void {
  const packed = execFileSync('npm', ['pack', '--pack-destination', dir, '--silent'], { cwd: ROOT, encoding: 'utf8' })
  const tarball = join(dir, packed.trim().split('\n').at(-1)!)
  const app = join(dir, 'app')
  mkdirSync(join(app, 'trivial'), { recursive: true })
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }))
  writeFileSync(
    join(app, 'trivial/package.json'),
    JSON.stringify({ name: 'trivial', version: '1.0.0', type: 'module', bin: { trivial: './cli.js' } }),
  )
  writeFileSync(join(app, 'trivial/cli.js'), "#!/usr/bin/env node\nprocess.stdout.write('trivial 1.0.0\\n')\n")
  // The same handler as the bare server: a copy of it that exports instead of listening.
  writeFileSync(
    join(app, 'hello.mjs'),
    "const body = 'Hello, world!\\n'\nconst headers = { 'content-type': 'text/plain', 'content-length': String(Buffer.byteLength(body)) }\n" +
      'export default function hello(_req, res) {\n  res.writeHead(200, headers)\n  res.end(body)\n}\n',
  )
  execFileSync('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', tarball, './trivial'], {
    cwd: app,
    env,
    stdio: 'ignore',
  })
}

/**
 * CPU time a process has used, all its threads, in ms (/proc/PID/task/TID/schedstat,
 * nanoseconds on CPU): what start-up costs, whatever else the machine is doing.
 */
function cpuMs(pid: number): number {
  let ns = 0
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      ns += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0])
    } catch {
      // the thread ended meanwhile
    }
  }
  return ns / 1e6
}

async function requests(port: number, n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    const r = await probe(port)
    if (!r.ok) throw new Error(`request ${i} failed: ${r.error}`)
  }
}

async function bareRound(): Promise<{ spawn: number; rss: number; cpu: number }> {
  const port = await freePort()
  const t0 = now()
  const p = start(NODE, [HELLO], { env: { ...env, PORT: String(port) } })
  const { firstOk } = await pollUntilOk(port, { timeoutMs: 10_000 })
  const cpu = cpuMs(p.pid)
  await requests(port, 200)
  const rss = rssKiB(p.pid)
  await stop(p)
  return { spawn: firstOk - t0, rss, cpu }
}

/** Launch → first response, and the CPU the master and the workers had used by then (workers summed). */
async function launchRound(app: string, bin: string): Promise<{ launch: number; master: number; workers: number }> {
  const port = await freePort()
  const t0 = now()
  const p = start(NODE, [bin, '-w', '4', '-b', `127.0.0.1:${port}`, 'hello.mjs'], { cwd: app, env })
  const { firstOk } = await pollUntilOk(port, { timeoutMs: 10_000 })
  const master = cpuMs(p.pid)
  const workers = children(p.pid).reduce((sum, pid) => sum + cpuMs(pid), 0)
  await stop(p)
  return { launch: firstOk - t0, master, workers }
}

async function workerRound(app: string, bin: string): Promise<{ respawn: number; master: number; worker: number }> {
  const port = await freePort()
  const p = start(NODE, [bin, '-w', '1', '-b', `127.0.0.1:${port}`, 'hello.mjs'], { cwd: app, env })
  await p.waitForLine(/Ready: 1 worker/, 10_000)
  await requests(port, 200)
  const [worker] = children(p.pid)
  if (worker === undefined) throw new Error('no worker')
  const master = rssKiB(p.pid)
  const workerRss = rssKiB(worker)
  // A worker younger than 5 s counts towards a crash streak (back-off); a settled one is replaced at once.
  await sleep(Math.max(0, 6_000 - ageMs(worker)))
  const t0 = now()
  process.kill(worker, 'SIGKILL')
  const { firstOk } = await pollUntilOk(port, { timeoutMs: 10_000 })
  await stop(p)
  return { respawn: firstOk - t0, master, worker: workerRss }
}

function timed(cmd: string, args: string[], cwd: string): number {
  const t0 = now()
  const r = spawnSync(cmd, args, { cwd, env, encoding: 'utf8' })
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr}`)
  return now() - t0
}

const scratch = mkdtempSync(join(tmpdir(), 'corral-startup-'))
try {
  process.stdout.write(`corral start-up bench: Node ${process.version}, ${REPS} rounds, median shown\n`)
  installApp(scratch)
  const app = join(scratch, 'app')
  const bin = join(app, 'node_modules/corral/bin/corral.js')
  // One unmeasured round each: the page cache and the compile cache as a second start finds them.
  await bareRound()
  await launchRound(app, bin)
  timed('npx', ['corral', '--version'], app)
  timed('npx', ['trivial'], app)

  const bare = { spawn: [] as number[], rss: [] as number[], cpu: [] as number[] }
  const launch: number[] = []
  const launchCpu = { master: [] as number[], workers: [] as number[] }
  const respawn: number[] = []
  const master: number[] = []
  const worker: number[] = []
  const npxCorral: number[] = []
  const npxTrivial: number[] = []
  for (let i = 0; i < REPS; i++) {
    const b = await bareRound()
    bare.spawn.push(b.spawn)
    bare.rss.push(b.rss)
    bare.cpu.push(b.cpu)
    const l = await launchRound(app, bin)
    launch.push(l.launch)
    launchCpu.master.push(l.master)
    launchCpu.workers.push(l.workers)
    const w = await workerRound(app, bin)
    respawn.push(w.respawn)
    master.push(w.master)
    worker.push(w.worker)
    npxCorral.push(timed('npx', ['corral', '--version'], app))
    npxTrivial.push(timed('npx', ['trivial'], app))
    process.stdout.write('.')
  }
  process.stdout.write('\n')
  const m = {
    bareSpawn: median(bare.spawn),
    bareRss: median(bare.rss),
    bareCpu: median(bare.cpu),
    launchCpuMaster: median(launchCpu.master),
    launchCpuWorkers: median(launchCpu.workers),
    launch: median(launch),
    respawn: median(respawn),
    master: median(master),
    worker: median(worker),
    npxCorral: median(npxCorral),
    npxTrivial: median(npxTrivial),
  }
  const check = (ok: boolean) => (ok ? '✓' : '✗')
  const rows: [string, string, string][] = [
    ['bare node:http: spawn → first response', ms(m.bareSpawn), 'reference'],
    ['bare node:http RSS after 200 requests', mib(m.bareRss), 'reference'],
    [
      'corral -w 4: launch → first response',
      ms(m.launch),
      `${(m.launch / m.bareSpawn).toFixed(2)} × bare ${check(m.launch <= 2.5 * m.bareSpawn)} (≤ 2.5 ×)`,
    ],
    ['bare node:http: CPU used by its first response', ms(m.bareCpu), 'reference'],
    [
      'corral -w 4: CPU used by the first response, master',
      ms(m.launchCpuMaster),
      `${(m.launchCpuMaster / m.bareCpu).toFixed(2)} × bare`,
    ],
    [
      'corral -w 4: CPU used by the first response, 4 workers',
      ms(m.launchCpuWorkers),
      `${(m.launchCpuWorkers / m.bareCpu).toFixed(2)} × bare`,
    ],
    [
      'corral -w 1: SIGKILL settled worker → next response',
      ms(m.respawn),
      `bare ${m.respawn >= m.bareSpawn ? '+' : '−'} ${ms(Math.abs(m.respawn - m.bareSpawn))} ${check(m.respawn <= m.bareSpawn + 10)} (≤ + 10 ms)`,
    ],
    [
      'corral master RSS',
      mib(m.master),
      `bare ${m.master >= m.bareRss ? '+' : '−'} ${mib(Math.abs(m.master - m.bareRss))} ${check(m.master - m.bareRss <= 5 * 1024)} (≤ + 5 MiB)`,
    ],
    [
      'corral worker RSS',
      mib(m.worker),
      `bare ${m.worker >= m.bareRss ? '+' : '−'} ${mib(Math.abs(m.worker - m.bareRss))} ${check(m.worker - m.bareRss <= 3 * 1024)} (≤ + 3 MiB)`,
    ],
    ['npx trivial (a bin that prints a line)', ms(m.npxTrivial), 'reference'],
    [
      'npx corral --version',
      ms(m.npxCorral),
      `${(m.npxCorral / m.npxTrivial).toFixed(2)} × npx trivial ${check(m.npxCorral <= 1.2 * m.npxTrivial)} (≤ 1.2 ×)`,
    ],
  ]
  const w0 = Math.max(...rows.map((r) => r[0].length))
  const w1 = Math.max(...rows.map((r) => r[1].length))
  for (const [a, b, c] of rows) process.stdout.write(`${a.padEnd(w0)}  ${b.padStart(w1)}  ${c}\n`)
  process.stdout.write(`JSON ${JSON.stringify({ node: process.version, reps: REPS, medians: m })}\n`)
} finally {
  killAllTracked()
  rmSync(scratch, { recursive: true, force: true })
}
