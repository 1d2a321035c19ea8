// Start-up as a user of the installed package feels it: issue 20's table, in
// one run, against a bare node:http process and Debian's gunicorn (a sync
// worker, a hello-world WSGI app) started the same way in the same run:
//
//   -w 4 launch → first response            ≤ 1.8 × bare node:http spawn → first response
//   killed worker → next response, no spare  ≤ bare spawn
//   killed worker → next response, --standby 1   ≤ 1.5 × gunicorn's
//   HUP of 4 workers → complete, 0 failed    ≤ 2 × gunicorn's
//   memory per spare                         ≤ 15 MiB private (PSS beside it)
//   request path, keep-alive and new conn/request   ≥ 0.98 × bare
//
// plus the CPU the first response cost, RSS, and `npx corral --version`.
// corral is the packed tarball (npm pack, which builds dist/) installed into a
// fresh app in a temp dir; `--baseline REF` packs the same from a git ref too
// (git archive, built with this checkout's node_modules) and measures both,
// interleaved, so a change is quoted against its baseline from the same run.
// The app is a hello handler in a .mjs file (it answers its pid on /pid), the
// bare server bench/servers/http-js.mjs, the same handler. Everything runs
// under this Node (process.execPath), never npx for the servers. Rounds are
// interleaved (each round runs every server once, in a rotating order) and
// the median is shown; it asserts nothing. A row whose feature the package
// lacks (--standby) says n/a. gunicorn rows need Debian's gunicorn
// (`apt-get install gunicorn`); without it they say n/a.
//
//   npm run bench:startup [-- --reps 5] [-- --baseline main]
import { execFileSync, spawnSync } from 'node:child_process'
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { parseArgs } from 'node:util'
import { fileURLToPath } from 'node:url'
import { backgroundProber, freePort, pollUntilOk, probe } from './lib/probe.ts'
import { ageMs, children, killAllTracked, now, rssKiB, run, sleep, start, stop, until, type Proc } from './lib/proc.ts'
import { wrk } from './lib/wrk.ts'

const { values: opt } = parseArgs({
  options: {
    reps: { type: 'string', default: '5' },
    baseline: { type: 'string' },
    'wrk-seconds': { type: 'string', default: '3' },
  },
})
const REPS = Number(opt.reps)
const WRK_SECONDS = Number(opt['wrk-seconds'])
const ROOT = fileURLToPath(new URL('..', import.meta.url))
const NODE = process.execPath
const HELLO = `${ROOT}bench/servers/http-js.mjs`
const GUNICORN = ['/usr/bin/gunicorn', '/usr/local/bin/gunicorn'].find((p) => existsSync(p))
const env: NodeJS.ProcessEnv = {
  ...process.env,
  PATH: `${dirname(NODE)}:${process.env.PATH}`,
  npm_config_update_notifier: 'false',
}
delete env.CORRAL_CMD_ARGS
delete env.PORT

const median = (xs: number[]) => {
  if (xs.length === 0) return Number.NaN
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2
}
const ms = (x: number) => (Number.isNaN(x) ? 'n/a' : `${x.toFixed(1)} ms`)
const mib = (kib: number) => (Number.isNaN(kib) ? 'n/a' : `${(kib / 1024).toFixed(1)} MiB`)
const times = (a: number, b: number) => (Number.isNaN(a) || Number.isNaN(b) ? 'n/a' : `${(a / b).toFixed(2)} ×`)
const check = (ok: boolean) => (ok ? '✓' : '✗')
const vsBare = (kib: number) => `bare ${kib >= 0 ? '+' : '−'} ${mib(Math.abs(kib))}`

// ---------------------------------------------------------------- set-up

/** The packed tarball of the checkout at `dir`. */
function pack(dir: string, dest: string): string {
  const packed = execFileSync('npm', ['pack', '--pack-destination', dest, '--silent'], {
    cwd: dir,
    encoding: 'utf8',
    env,
  })
  return join(dest, packed.trim().split('\n').at(-1)!)
}

/** A checkout of `ref` in `dir` (git archive), built with this checkout's node_modules. */
function checkout(ref: string, dir: string): void {
  mkdirSync(dir, { recursive: true })
  execFileSync('sh', ['-c', 'git -C "$1" archive "$2" | tar -x -C "$3"', 'sh', ROOT, ref, dir])
  symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'))
}

const HELLO_MJS =
  "const body = 'Hello, world!\\n'\nconst headers = { 'content-type': 'text/plain', 'content-length': String(Buffer.byteLength(body)) }\n" +
  'export default function hello(req, res) {\n' +
  "  if (req.url === '/pid') return res.end(String(process.pid))\n" +
  '  res.writeHead(200, headers)\n  res.end(body)\n}\n'

const HELLO_PY = `import os
BODY = b"Hello, world!\\n"
def app(environ, start_response):
    body = str(os.getpid()).encode() if environ.get("PATH_INFO") == "/pid" else BODY
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
`

/** An app dir with corral installed from `tarball`, the hello app, and a trivial bin for npx. */
function installApp(app: string, tarball: string): string {
  mkdirSync(join(app, 'trivial'), { recursive: true })
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }))
  writeFileSync(
    join(app, 'trivial/package.json'),
    JSON.stringify({ name: 'trivial', version: '1.0.0', type: 'module', bin: { trivial: './cli.js' } }),
  )
  writeFileSync(join(app, 'trivial/cli.js'), "#!/usr/bin/env node\nprocess.stdout.write('trivial 1.0.0\\n')\n")
  // The same handler as the bare server, exported instead of listening.
  writeFileSync(join(app, 'hello.mjs'), HELLO_MJS)
  writeFileSync(join(app, 'hello.py'), HELLO_PY)
  execFileSync('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', tarball, './trivial'], {
    cwd: app,
    env,
    stdio: 'ignore',
  })
  return join(app, 'node_modules/corral/bin/corral.js')
}

// ---------------------------------------------------------------- measuring

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

/** Private (clean + dirty) and proportional set size of a process, KiB (/proc/PID/smaps_rollup). */
function smaps(pid: number): { private: number; pss: number } {
  const text = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8')
  const field = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? Number.NaN)
  return { private: field('Private_Clean') + field('Private_Dirty'), pss: field('Pss') }
}

async function requests(port: number, n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    const r = await probe(port)
    if (!r.ok) throw new Error(`request ${i} failed: ${r.error}`)
  }
}

/** GET /pid on a fresh connection: which process answered. */
async function pidAt(port: number): Promise<number> {
  const res = await fetch(`http://127.0.0.1:${port}/pid`, { headers: { connection: 'close' } })
  return Number(await res.text())
}

interface Server {
  /** Starts it with `workers` workers (and `standby` spares) on `port`. */
  start(port: number, workers: number, standby?: number): Proc
  /** Resolves once all its workers serve. */
  ready(p: Proc, workers: number): Promise<void>
}

function corralServer(bin: string, app: string): Server {
  return {
    start: (port, workers, standby) =>
      start(
        NODE,
        [
          bin,
          '-w',
          String(workers),
          ...(standby === undefined ? [] : ['--standby', String(standby)]),
          '-b',
          `127.0.0.1:${port}`,
          'hello.mjs',
        ],
        { cwd: app, env },
      ),
    ready: async (p, workers) => {
      await p.waitForLine(new RegExp(`Ready: ${workers} worker`), 20_000)
    },
  }
}

function gunicornServer(app: string): Server {
  return {
    start: (port, workers) =>
      start(GUNICORN!, ['-w', String(workers), '-b', `127.0.0.1:${port}`, '--chdir', app, 'hello:app'], {
        cwd: app,
        env,
      }),
    // A sync worker serves once booted: all of them there, and one answering.
    ready: async (p, workers) => {
      await until(() => children(p.pid).length === workers, 20_000, 'gunicorn workers', 10)
    },
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

/** -w 4: launch → first response, and the CPU the master and the workers had used by then (workers summed). */
async function launchRound(server: Server): Promise<{ launch: number; master: number; workers: number }> {
  const port = await freePort()
  const t0 = now()
  const p = server.start(port, 4)
  const { firstOk } = await pollUntilOk(port, { timeoutMs: 20_000 })
  const master = cpuMs(p.pid)
  const workers = children(p.pid).reduce((sum, pid) => sum + cpuMs(pid), 0)
  await stop(p)
  return { launch: firstOk - t0, master, workers }
}

/**
 * -w 1 (and `standby` spares): SIGKILL the serving worker once settled →
 * next response; with no spare, the RSS of master and worker too; with one,
 * the spare's private memory and PSS.
 */
async function killRound(
  server: Server,
  standby?: number,
): Promise<{ respawn: number; master: number; worker: number; spare?: { private: number; pss: number } }> {
  const port = await freePort()
  const p = server.start(port, 1, standby)
  try {
    await server.ready(p, 1)
    await requests(port, 200)
    const serving = await pidAt(port)
    const others = children(p.pid).filter((pid) => pid !== serving)
    if (standby && others.length !== standby) throw new Error(`${others.length} spares, not ${standby}`)
    const spare = standby ? smaps(others[0]!) : undefined
    const master = rssKiB(p.pid)
    const worker = rssKiB(serving)
    // A worker younger than 5 s counts towards a crash streak (back-off); a settled one is replaced at once.
    await sleep(Math.max(0, 6_000 - ageMs(serving)))
    const t0 = now()
    process.kill(serving, 'SIGKILL')
    const { firstOk } = await pollUntilOk(port, { timeoutMs: 20_000 })
    return { respawn: firstOk - t0, master, worker, ...(spare && { spare }) }
  } finally {
    await stop(p)
  }
}

/** -w 4: HUP → every old worker gone and 4 new ones in their place; requests failed meanwhile. */
async function hupRound(server: Server): Promise<{ hup: number; failed: number }> {
  const port = await freePort()
  const p = server.start(port, 4)
  try {
    await server.ready(p, 4)
    const old = new Set(children(p.pid))
    const prober = backgroundProber(port, 2)
    await sleep(100)
    const t0 = now()
    process.kill(p.pid, 'SIGHUP')
    const done = await until(
      () => {
        const kids = children(p.pid)
        return kids.length === 4 && kids.every((pid) => !old.has(pid))
      },
      30_000,
      'the HUP to complete',
      1,
    )
    await sleep(100)
    const { failed } = await prober.stop()
    return { hup: done - t0, failed: Object.values(failed).reduce((a, b) => a + b, 0) }
  } finally {
    await stop(p)
  }
}

/**
 * Requests per second through one process: bare, or corral -w 1; keep-alive
 * or a new connection each. As bench/run.ts does it: the server's processes
 * on CPU 0, wrk on CPU 1.
 */
async function requestPathRound(server: Server | 'bare', close: boolean): Promise<number> {
  const port = await freePort()
  const p = server === 'bare' ? start(NODE, [HELLO], { env: { ...env, PORT: String(port) } }) : server.start(port, 1)
  try {
    if (server === 'bare') await pollUntilOk(port, { timeoutMs: 10_000 })
    else await server.ready(p, 1)
    for (const pid of [p.pid, ...children(p.pid)])
      await run('taskset', ['-apc', '0', String(pid)], { timeoutMs: 5_000 })
    await wrk({ port, cpu: '1', connections: 16, seconds: 1, close })
    return (await wrk({ port, cpu: '1', connections: 16, seconds: WRK_SECONDS, close })).rps
  } finally {
    await stop(p)
  }
}

function timed(cmd: string, args: string[], cwd: string): number {
  const t0 = now()
  const r = spawnSync(cmd, args, { cwd, env, encoding: 'utf8' })
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr}`)
  return now() - t0
}

/** Whether this corral knows `--standby` (added by issue 20's spares). */
function knowsStandby(bin: string): boolean {
  const r = spawnSync(NODE, [bin, '--help'], { env, encoding: 'utf8' })
  return `${r.stdout}${r.stderr}`.includes('--standby')
}

// ---------------------------------------------------------------- the run

interface CorralSamples {
  launch: number[]
  launchCpuMaster: number[]
  launchCpuWorkers: number[]
  respawn: number[]
  respawnStandby: number[]
  sparePrivate: number[]
  sparePss: number[]
  hup: number[]
  hupFailed: number[]
  master: number[]
  worker: number[]
  keepAlive: number[]
  close: number[]
  npx: number[]
}

interface Variant {
  label: string
  app: string
  bin: string
  server: Server
  standby: boolean
  s: CorralSamples
}

const emptySamples = (): CorralSamples => ({
  launch: [],
  launchCpuMaster: [],
  launchCpuWorkers: [],
  respawn: [],
  respawnStandby: [],
  sparePrivate: [],
  sparePss: [],
  hup: [],
  hupFailed: [],
  master: [],
  worker: [],
  keepAlive: [],
  close: [],
  npx: [],
})

const scratch = mkdtempSync(join(tmpdir(), 'corral-startup-'))
try {
  process.stdout.write(
    `corral start-up bench: Node ${process.version}, ${REPS} rounds, median shown; gunicorn: ${GUNICORN ?? 'not installed (apt-get install gunicorn)'}\n`,
  )
  const variants: Variant[] = []
  const add = (label: string, tarball: string) => {
    const app = join(scratch, `app-${variants.length}`)
    const bin = installApp(app, tarball)
    variants.push({
      label,
      app,
      bin,
      server: corralServer(bin, app),
      standby: knowsStandby(bin),
      s: emptySamples(),
    })
  }
  add('corral (this checkout)', pack(ROOT, scratch))
  if (opt.baseline) {
    const dir = join(scratch, 'baseline')
    checkout(opt.baseline, dir)
    add(`corral @ ${opt.baseline}`, pack(dir, scratch))
  }
  const gunicorn = GUNICORN ? gunicornServer(variants[0]!.app) : undefined

  // One unmeasured round each: the page cache and the compile cache as a second start finds them.
  await bareRound()
  for (const v of variants) {
    await launchRound(v.server)
    timed('npx', ['corral', '--version'], v.app)
  }
  if (gunicorn) await launchRound(gunicorn)
  timed('npx', ['trivial'], variants[0]!.app)

  const bare = {
    spawn: [] as number[],
    rss: [] as number[],
    cpu: [] as number[],
    keepAlive: [] as number[],
    close: [] as number[],
  }
  const guni = { launch: [] as number[], respawn: [] as number[], hup: [] as number[], hupFailed: [] as number[] }
  const npxTrivial: number[] = []
  for (let i = 0; i < REPS; i++) {
    // Every server once per round, the corral variants in a rotating order.
    const order = variants.map((_, k) => variants[(k + i) % variants.length]!)
    const b = await bareRound()
    bare.spawn.push(b.spawn)
    bare.rss.push(b.rss)
    bare.cpu.push(b.cpu)
    for (const v of order) {
      const l = await launchRound(v.server)
      v.s.launch.push(l.launch)
      v.s.launchCpuMaster.push(l.master)
      v.s.launchCpuWorkers.push(l.workers)
    }
    if (gunicorn) guni.launch.push((await launchRound(gunicorn)).launch)
    for (const v of order) {
      const k = await killRound(v.server)
      v.s.respawn.push(k.respawn)
      v.s.master.push(k.master)
      v.s.worker.push(k.worker)
      if (v.standby) {
        const s = await killRound(v.server, 1)
        v.s.respawnStandby.push(s.respawn)
        v.s.sparePrivate.push(s.spare!.private)
        v.s.sparePss.push(s.spare!.pss)
      }
    }
    if (gunicorn) guni.respawn.push((await killRound(gunicorn)).respawn)
    for (const v of order) {
      const h = await hupRound(v.server)
      v.s.hup.push(h.hup)
      v.s.hupFailed.push(h.failed)
    }
    if (gunicorn) {
      const h = await hupRound(gunicorn)
      guni.hup.push(h.hup)
      guni.hupFailed.push(h.failed)
    }
    for (const close of [false, true]) {
      const rps = await requestPathRound('bare', close)
      ;(close ? bare.close : bare.keepAlive).push(rps)
      for (const v of order) (close ? v.s.close : v.s.keepAlive).push(await requestPathRound(v.server, close))
    }
    for (const v of order) v.s.npx.push(timed('npx', ['corral', '--version'], v.app))
    npxTrivial.push(timed('npx', ['trivial'], variants[0]!.app))
    process.stdout.write('.')
  }
  process.stdout.write('\n')

  const B = {
    spawn: median(bare.spawn),
    rss: median(bare.rss),
    cpu: median(bare.cpu),
    keepAlive: median(bare.keepAlive),
    close: median(bare.close),
    npxTrivial: median(npxTrivial),
  }
  const G = {
    launch: median(guni.launch),
    respawn: median(guni.respawn),
    hup: median(guni.hup),
    hupFailed: guni.hupFailed.reduce((a, b) => a + b, 0),
  }
  const rows: [string, string, string][] = [
    ['bare node:http: spawn → first response', ms(B.spawn), 'reference'],
    ['bare node:http: CPU used by its first response', ms(B.cpu), 'reference'],
    ['bare node:http RSS after 200 requests', mib(B.rss), 'reference'],
  ]
  if (gunicorn)
    rows.push(
      ['gunicorn -w 4: launch → first response', ms(G.launch), `${times(G.launch, B.spawn)} bare`],
      ['gunicorn -w 1: SIGKILL settled worker → next response', ms(G.respawn), 'reference'],
      ['gunicorn -w 4: HUP → complete', ms(G.hup), `reference; ${G.hupFailed} failed in all rounds`],
    )
  const medians: Record<string, Record<string, number>> = {}
  for (const v of variants) {
    const m = Object.fromEntries(Object.entries(v.s).map(([k, xs]) => [k, median(xs as number[])])) as Record<
      keyof CorralSamples,
      number
    >
    medians[v.label] = m
    const failed = v.s.hupFailed.reduce((a, b) => a + b, 0)
    const na = 'n/a (no --standby)'
    rows.push(
      [`${v.label}`, '', ''],
      [
        '  -w 4: launch → first response',
        ms(m.launch),
        `${times(m.launch, B.spawn)} bare ${check(m.launch <= 1.8 * B.spawn)} (≤ 1.8 ×)`,
      ],
      ['  -w 4: CPU by the first response, master', ms(m.launchCpuMaster), `${times(m.launchCpuMaster, B.cpu)} bare`],
      [
        '  -w 4: CPU by the first response, 4 workers',
        ms(m.launchCpuWorkers),
        `${times(m.launchCpuWorkers, B.cpu)} bare`,
      ],
      [
        '  -w 1: SIGKILL settled worker → next response',
        ms(m.respawn),
        `${times(m.respawn, B.spawn)} bare spawn ${check(m.respawn <= B.spawn)} (≤ 1 ×)`,
      ],
      [
        '  -w 1 --standby 1: SIGKILL → next response',
        v.standby ? ms(m.respawnStandby) : na,
        v.standby && gunicorn
          ? `${times(m.respawnStandby, G.respawn)} gunicorn ${check(m.respawnStandby <= 1.5 * G.respawn)} (≤ 1.5 ×)`
          : '',
      ],
      [
        '  -w 4: HUP → complete',
        ms(m.hup),
        `${gunicorn ? `${times(m.hup, G.hup)} gunicorn ${check(m.hup <= 2 * G.hup)} (≤ 2 ×); ` : ''}${failed} failed in all rounds ${check(failed === 0)}`,
      ],
      [
        '  memory per spare, private (PSS)',
        v.standby ? `${mib(m.sparePrivate)} (${mib(m.sparePss)})` : na,
        v.standby ? `${check(m.sparePrivate <= 15 * 1024)} (≤ 15 MiB private)` : '',
      ],
      [
        '  request path, keep-alive',
        `${Math.round(m.keepAlive)} req/s`,
        `${times(m.keepAlive, B.keepAlive)} bare (${Math.round(B.keepAlive)}) ${check(m.keepAlive >= 0.98 * B.keepAlive)} (≥ 0.98 ×)`,
      ],
      [
        '  request path, new conn/request',
        `${Math.round(m.close)} req/s`,
        `${times(m.close, B.close)} bare (${Math.round(B.close)}) ${check(m.close >= 0.98 * B.close)} (≥ 0.98 ×)`,
      ],
      ['  master RSS (-w 1, 200 requests)', mib(m.master), vsBare(m.master - B.rss)],
      ['  worker RSS (-w 1, 200 requests)', mib(m.worker), vsBare(m.worker - B.rss)],
      ['  npx corral --version', ms(m.npx), `${times(m.npx, B.npxTrivial)} npx trivial (${ms(B.npxTrivial)})`],
    )
  }
  const w0 = Math.max(...rows.map((r) => r[0].length))
  const w1 = Math.max(...rows.map((r) => r[1].length))
  for (const [a, b, c] of rows) process.stdout.write(`${a.padEnd(w0)}  ${b.padStart(w1)}  ${c}\n`)
  process.stdout.write(
    `JSON ${JSON.stringify({ node: process.version, reps: REPS, bare: B, gunicorn: gunicorn ? G : null, corral: medians })}\n`,
  )
} finally {
  killAllTracked()
  rmSync(scratch, { recursive: true, force: true })
}
