// The upgrade protocol end to end: USR2 re-exec with the code re-read from
// disk, WINCH, QUIT, rollbacks, --upgrade auto, `corral upgrade` and -D,
// with real masters under steady load.
import { spawn, spawnSync } from 'node:child_process'
import { copyFileSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { afterEach, describe, expect, it } from 'vitest'
import {
  BIN,
  childrenOf,
  fixture,
  freePort,
  isAlive,
  killAll,
  pidIn,
  ROOT,
  startCorral,
  track,
  waitFor,
  type Corral,
} from './helpers/corral.ts'
import { get, startLoad } from './helpers/load.ts'

afterEach(killAll)

const spawnSyncOk = (cmd: string, args: string[]) => spawnSync(cmd, args, { timeout: 5000 }).status === 0

interface Deployment {
  dir: string
  app: string
  pidfile: string
  url: string
  port: number
}

/** An app file in a directory of its own, so a test can "deploy" new code over it. */
async function deployment(): Promise<Deployment> {
  const dir = mkdtempSync('/tmp/corral-upgrade-')
  const app = `${dir}/app.ts`
  copyFileSync(fixture('app-pid.ts'), app)
  const port = await freePort()
  return { dir, app, pidfile: `${dir}/corral.pid`, url: `http://127.0.0.1:${port}`, port }
}

const breakApp = (d: Deployment) => writeFileSync(d.app, "throw new Error('broken deploy: thrown at import')\n")

async function startMaster(d: Deployment, extra: string[] = [], signal?: AbortSignal): Promise<Corral> {
  const corral = startCorral(['-w', '2', '-b', `127.0.0.1:${d.port}`, '-p', d.pidfile, ...extra, d.app], { signal })
  await corral.untilReady()
  await waitFor(() => pidIn(d.pidfile) === corral.pid, { what: 'pidfile' })
  return corral
}

/** USR2, then wait until the new master has written the pidfile. */
async function reexec(old: Corral, d: Deployment): Promise<number> {
  old.signal('SIGUSR2')
  const fresh = await waitFor(
    () => {
      const pid = pidIn(d.pidfile)
      return pid !== undefined && pid !== old.pid && pid
    },
    { what: 'new master to be ready' },
  )
  track(fresh)
  return fresh
}

for (const keepAlive of [false, true]) {
  describe(`under load (${keepAlive ? 'keep-alive' : 'new connection per request'})`, () => {
    it('USR2 → WINCH → QUIT hands over to a new master with 0 failed requests', async ({ signal }) => {
      const d = await deployment()
      const old = await startMaster(d, [], signal)
      const oldWorkers = old.workers()
      const load = startLoad(d.url, { connections: 4, keepAlive })
      await load.more(20)

      const fresh = await reexec(old, d)
      expect(pidIn(`${d.pidfile}.2`)).toBe(old.pid)
      // The new master answers on the control socket now: the old one tells only its log.
      await old.waitForLog(/New master is ready/)
      await load.more(20)
      old.signal('SIGWINCH')
      await waitFor(() => oldWorkers.every((p) => !isAlive(p)), { what: 'old workers to stop on WINCH' })
      expect(isAlive(old.pid)).toBe(true)
      old.signal('SIGQUIT')
      expect((await old.exited).code).toBe(0)
      await load.more(20)

      const result = await load.stop()
      expect(result.errors.slice(0, 5)).toEqual([])
      expect(result.failed).toBe(0)
      expect(pidIn(d.pidfile)).toBe(fresh)
      expect(existsSync(`${d.pidfile}.2`)).toBe(false)
      const body = (await get(d.url)).body
      expect(oldWorkers).not.toContain(Number(body))
      // Old workers served before the hand-over, new ones after it.
      expect(oldWorkers.some((p) => result.bodies.has(String(p)))).toBe(true)
      expect(result.bodies.has(body)).toBe(true)
    })

    it('rolls back when the new code cannot load: old master keeps serving, pidfile restored, 0 failed', async ({
      signal,
    }) => {
      const d = await deployment()
      const old = await startMaster(d, [], signal)
      const workers = old.workers()
      const load = startLoad(d.url, { connections: 4, keepAlive })
      await load.more(20)
      breakApp(d)
      old.signal('SIGUSR2')
      await old.waitForLog(/Re-exec failed: the new master exited with code 4 before it was ready/)
      await load.more(20)
      const result = await load.stop()
      expect(result.failed).toBe(0)
      expect(pidIn(d.pidfile)).toBe(old.pid)
      expect(existsSync(`${d.pidfile}.2`)).toBe(false)
      expect(old.workers()).toEqual(workers)
      expect(old.log()).toMatch(/broken deploy: thrown at import/)
    })
  })
}

describe('manual steps', () => {
  it('rolls back by hand: HUP the old master after WINCH, QUIT the new one', async ({ signal }) => {
    const d = await deployment()
    const old = await startMaster(d, [], signal)
    const fresh = await reexec(old, d)
    old.signal('SIGWINCH')
    // The new master answers on the control socket until it exits: the old one tells only its log.
    await old.waitForLog(/WINCH: stopping all workers/)
    await waitFor(() => old.workers().length === 0, { what: 'the old master’s workers to stop on WINCH' })
    const load = startLoad(d.url, { connections: 2 })
    old.signal('SIGHUP')
    await old.waitForLog(/Reload complete/)
    process.kill(fresh, 'SIGQUIT')
    await old.untilMachine('this master in charge again', (m) => m.childMaster === 'none')
    await load.more(20)
    const result = await load.stop()
    expect(result.failed).toBe(0)
    expect(pidIn(d.pidfile)).toBe(old.pid)
    expect(existsSync(`${d.pidfile}.2`)).toBe(false)
    expect(old.workers()).toHaveLength(2)
  })

  it('refuses a second USR2 while a new master is running', async ({ signal }) => {
    const d = await deployment()
    const old = await startMaster(d, [], signal)
    await reexec(old, d)
    const mark = old.log().length
    old.signal('SIGUSR2')
    await old.waitForLog(/USR2 refused: a new master is already running/, { from: mark })
  })
})

describe('PID 1', () => {
  // A PID namespace makes corral PID 1, as in a container.
  const canUnshare = spawnSyncOk('unshare', ['--pid', '--fork', '--mount-proc', 'true'])
  it.skipIf(!canUnshare)('refuses USR2 as PID 1 and keeps serving', async () => {
    const d = await deployment()
    const child = spawn(
      'unshare',
      [
        '--pid',
        '--fork',
        '--mount-proc',
        '--kill-child',
        process.execPath,
        BIN,
        '-w',
        '1',
        '-b',
        `127.0.0.1:${d.port}`,
        d.app,
      ],
      { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] },
    )
    track(child.pid!)
    let log = ''
    child.stderr!.on('data', (c: Buffer) => (log += c.toString()))
    await waitFor(() => /\[1\] \[INFO\] Ready: 1 worker/.test(log), { what: 'ready as PID 1' })
    const [master] = childrenOf(child.pid!)
    process.kill(master!, 'SIGUSR2')
    await waitFor(() => /USR2 refused: corral is PID 1/.test(log), { what: 'USR2 to be refused' })
    expect((await get(d.url)).status).toBe(200)
    process.kill(master!, 'SIGTERM')
    await waitFor(() => /Shutting down: Master/.test(log), { what: 'stop' })
  })
})

describe('automatic hand-over', () => {
  it('--upgrade auto: the old master stops its workers and exits once the new one is ready, 0 failed', async ({
    signal,
  }) => {
    const d = await deployment()
    const old = await startMaster(d, ['--upgrade', 'auto'], signal)
    const load = startLoad(d.url, { connections: 4 })
    await load.more(20)
    const fresh = await reexec(old, d)
    expect((await old.exited).code).toBe(0)
    await load.more(20)
    const result = await load.stop()
    expect(result.failed).toBe(0)
    expect(pidIn(d.pidfile)).toBe(fresh)
    expect(existsSync(`${d.pidfile}.2`)).toBe(false)
    expect(isAlive(fresh)).toBe(true)
  })
})

function runCli(args: string[], timeoutMs = 30_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout!.on('data', (c: Buffer) => (stdout += c.toString()))
    child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()))
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
    child.on('exit', (code) => {
      clearTimeout(timer)
      resolve({ code, stdout, stderr })
    })
  })
}

describe('corral upgrade', () => {
  it('performs the whole procedure and exits 0 when the new master serves', async ({ signal }) => {
    const d = await deployment()
    const old = await startMaster(d, [], signal)
    const load = startLoad(d.url, { connections: 4 })
    const r = await runCli(['upgrade', '--pid', d.pidfile, '--timeout', '20'])
    const result = await load.stop()
    const fresh = pidIn(d.pidfile)!
    track(fresh)
    expect(r.stderr).toBe('')
    expect(r.code).toBe(0)
    expect(r.stdout).toMatch(new RegExp(`done: master ${fresh} serves`))
    expect(fresh).not.toBe(old.pid)
    expect((await old.exited).code).toBe(0)
    expect(result.failed).toBe(0)
  })

  it('exits non-zero, and the old master keeps serving, when the new code is broken', async ({ signal }) => {
    const d = await deployment()
    const old = await startMaster(d, [], signal)
    breakApp(d)
    const r = await runCli(['upgrade', '--pid', d.pidfile, '--timeout', '20'])
    expect(r.code).toBe(1)
    expect(r.stderr).toMatch(/the new master failed before it was ready; master \d+ keeps serving/)
    expect(pidIn(d.pidfile)).toBe(old.pid)
    expect((await get(d.url)).status).toBe(200)
  })

  it('says what is missing when no master is running', async () => {
    const r = await runCli(['upgrade', '--pid', '/tmp/no-such-corral.pid'])
    expect(r.code).toBe(1)
    expect(r.stderr).toMatch(/no running master is named in \/tmp\/no-such-corral\.pid/)
    expect((await runCli(['upgrade'])).code).toBe(2)
  })
})

// corral upgrade and corral ctl upgrade are one procedure (src/cli/upgrade.ts),
// watched through the pidfiles or the control sockets: each way in is tried.
describe('a new master too slow to get ready', () => {
  // Its workers never finish importing the app, so it is never ready, however fast the machine.
  const slowApp = 'await new Promise((r) => setTimeout(r, 3_600_000))\nexport default () => {}\n'
  const entryPoints: Record<string, (d: Deployment, old: Corral) => string[]> = {
    'corral upgrade': (d) => ['upgrade', '--pid', d.pidfile, '--timeout', '2'],
    'corral ctl upgrade': (_, old) => ['ctl', '-s', old.controlSocket!, '--timeout', '2', 'upgrade'],
  }
  for (const [name, args] of Object.entries(entryPoints)) {
    it(`${name}: is stopped at --timeout and the old master keeps serving, exit 1`, async ({ signal }) => {
      const d = await deployment()
      // Its stop is graceful: its booting workers are put down at this deadline.
      const old = await startMaster(d, ['--graceful-timeout', '3'], signal)
      writeFileSync(d.app, slowApp)
      const r = await runCli(args(d, old), 120_000)
      expect(r.stdout).toContain(`sent USR2 to master ${old.pid}`)
      expect(r.stderr).toMatch(
        new RegExp(`: the new master was not ready after 2 s; rolled back, master ${old.pid} keeps serving\n$`),
      )
      expect(r.code).toBe(1)
      expect(pidIn(d.pidfile)).toBe(old.pid)
      // The new master is gone, not left booting beside the old one.
      const masters = childrenOf(old.pid).filter((pid) => {
        try {
          return readFileSync(`/proc/${pid}/cmdline`, 'utf8').startsWith('corral: master')
        } catch {
          return false
        }
      })
      expect(masters).toEqual([])
      expect((await get(d.url)).status).toBe(200)
      expect(isAlive(old.pid)).toBe(true)
    })
  }
})

describe('daemon mode', () => {
  it('-D returns once the master serves; the daemon stops on TERM', async () => {
    const d = await deployment()
    const r = await runCli(['-D', '-w', '1', '-b', `127.0.0.1:${d.port}`, '-p', d.pidfile, d.app])
    const pid = pidIn(d.pidfile)!
    track(pid)
    expect(r.code).toBe(0)
    expect(r.stdout).toMatch(new RegExp(`daemon serving, master pid ${pid}`))
    expect((await get(d.url)).status).toBe(200)
    // A new session: the daemon leads it, with no terminal.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    expect(Number(fields[3])).toBe(pid) // session id
    process.kill(pid, 'SIGTERM')
    await waitFor(() => !isAlive(pid), { what: 'daemon to exit' })
    expect(existsSync(d.pidfile)).toBe(false)
  })

  it('-D fails with the reason when the app cannot load', async () => {
    const d = await deployment()
    breakApp(d)
    const r = await runCli(['-D', '-w', '1', '-b', `127.0.0.1:${d.port}`, '-p', d.pidfile, d.app])
    expect(r.code).toBe(4)
    expect(r.stderr).toMatch(/daemon exited with code 4 before serving/)
    expect(r.stderr).toMatch(/App failed to load/)
  })
})
