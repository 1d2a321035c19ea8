// The control socket and `corral ctl`, end to end (spec/control.md): real
// masters, real signals, the socket file on disk, the CLI as a user runs it.
import { execFile, spawn } from 'node:child_process'
import { copyFileSync, existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { BIN, fixture, freePort, isAlive, killAll, startCorral, track, waitFor, type Corral } from './helpers/corral.ts'
import { ask } from './helpers/control.ts'
import { get } from './helpers/load.ts'
import type { ControlData, MachineSummary, MasterStats, WorkerRow } from '../src/protocol/control.ts'

afterEach(killAll)
// Hang guards, not thresholds: several masters per test, on a machine that may be busy.
vi.setConfig({ testTimeout: 90_000 })
const STARTED = { timeoutMs: 45_000 }

async function serve(
  extra: string[],
  options: { cwd?: string; signal?: AbortSignal; withoutSocket?: boolean } = {},
): Promise<{ corral: Corral; url: string; socket: string }> {
  const port = await freePort()
  const corral = startCorral(['-b', `127.0.0.1:${port}`, ...extra, fixture('app-pid.ts')], options)
  // A master running without a control socket can say it is ready only in its log.
  if (options.withoutSocket) await corral.waitForLog(/Ready: \d+ worker\(s\) serving/)
  else await corral.untilReady()
  const socket = corral.controlSocket ?? join(options.cwd ?? '.', 'corral.ctl')
  return { corral, url: `http://127.0.0.1:${port}`, socket }
}

/** `corral ctl ARGS…` as a user runs it. */
const ctl = (...args: string[]) => run('ctl', ...args)

function run(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) =>
    execFile(process.execPath, [BIN, ...args], { timeout: 60_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    ),
  )
}

async function data<K extends ControlData['kind']>(socket: string, command: string[], kind: K) {
  const r = await ask(socket, command)
  if (!r.ok) throw new Error(r.error)
  expect(r.data.kind).toBe(kind)
  return r.data as Extract<ControlData, { kind: K }>
}

const running = async (socket: string) =>
  (await data(socket, ['show', 'workers'], 'workers')).workers.filter((w) => w.state === 'running')
const untilRunning = (socket: string, n: number) =>
  waitFor(async () => (await running(socket)).length === n, { ...STARTED, what: `${n} running workers` })
const count = (text: string, pattern: RegExp) => text.match(new RegExp(pattern, 'g'))?.length ?? 0

describe('commands and their signal twins', () => {
  it('reload is HUP; worker add/remove are TTIN/TTOU; reopen is USR1', async ({ signal }) => {
    const { corral, socket } = await serve(['-w', '1'], { signal })
    expect((await ctl('-s', socket, 'reload')).stdout).toMatch(/^sent HUP to master \d+\n$/)
    await corral.untilReloaded(1)
    corral.signal('SIGHUP')
    await corral.untilReloaded(2)
    const machine = (await data(socket, ['show', 'machine'], 'machine')).machine
    expect(machine).toMatchObject({ generation: 2, target: 1, state: 'active.running.steady', ready: true })
    expect((await data(socket, ['show', 'stats'], 'stats')).stats.reloads).toBe(2)
    // Each reload replaced the one worker of the generation before.
    await waitFor(async () => (await data(socket, ['show', 'stats'], 'stats')).stats.restarts.reload === 2, {
      what: '2 reload restarts',
    })

    expect((await ctl('-s', socket, 'worker', 'add', '2')).stdout).toMatch(/sent TTIN ×2 to master \d+/)
    await untilRunning(socket, 3)
    corral.signal('SIGTTIN')
    await untilRunning(socket, 4)
    // Three TTIN events, one log line each, whichever way they came.
    await waitFor(() => count(corral.log(), /Number of workers: \d -> \d/) === 3, {
      ...STARTED,
      what: '3 TTIN log lines',
    })
    await ctl('-s', socket, 'worker', 'remove')
    await untilRunning(socket, 3)
    corral.signal('SIGTTOU')
    await untilRunning(socket, 2)
    await waitFor(() => count(corral.log(), /Number of workers: \d -> \d/) === 5, {
      ...STARTED,
      what: '2 TTOU log lines',
    })
    // Scaling down is no restart.
    expect((await data(socket, ['show', 'stats'], 'stats')).stats.restarts).toEqual({
      crash: 0,
      timeout: 0,
      'max-requests': 0,
      'max-memory': 0,
      retired: 0,
      killed: 0,
      reload: 2,
    })

    await ctl('-s', socket, 'reopen')
    await waitFor(() => count(corral.log(), /\[INFO\] Reopening log files/) === 3, {
      what: 'reopen, master and 2 workers',
    })
    corral.signal('SIGUSR1')
    await waitFor(() => count(corral.log(), /\[INFO\] Reopening log files/) === 6, {
      ...STARTED,
      what: 'USR1, the same again',
    })
  })

  // `corral stop --no-wait` is the shortcut for `corral ctl shutdown`.
  for (const [words, twin] of [
    [['stop', '--no-wait'], 'SIGTERM'],
    [['ctl', 'shutdown', 'quick'], 'SIGINT'],
  ] as const) {
    it(`corral ${words.join(' ')} ends the master as ${twin} does`, async ({ signal }) => {
      const a = await serve(['-w', '2'], { signal })
      const b = await serve(['-w', '2'], { signal })
      const sent = await run(...words, '-s', a.socket)
      expect(sent.stdout).toMatch(new RegExp(`sent ${twin.slice(3)} to master ${a.corral.pid}`))
      b.corral.signal(twin)
      const [ea, eb] = await Promise.all([a.corral.exited, b.corral.exited])
      await Promise.all([a.corral.ended(), b.corral.ended()])
      expect(ea).toEqual({ code: 0, signal: null })
      expect(eb).toEqual(ea)
      const shape = (log: string) =>
        log
          .split('\n')
          .filter((l) => /Shutting down|Handling signal/.test(l))
          .map((l) => l.replace(/^.*\] /, ''))
      expect(shape(a.corral.log())).toEqual(shape(b.corral.log()))
      // The master removed its socket file on the way out.
      expect(existsSync(a.socket)).toBe(false)
    })
  }
})

describe('reload and stop wait for the outcome, as pm2 reload and systemctl reload do', () => {
  it('corral reload returns once the new generation serves, exit 0; --no-wait once the master has the HUP', async ({
    signal,
  }) => {
    const { corral, socket } = await serve(['-w', '2'], { signal })
    const before = (await data(socket, ['show', 'machine'], 'machine')).machine.generation
    const r = await run('reload', '-s', socket)
    expect(r).toMatchObject({
      code: 0,
      stdout: `reload complete: generation ${before + 1} is serving (master ${corral.pid})\n`,
    })
    // When it returns, the generation it names serves, steady.
    const machine = (await data(socket, ['show', 'machine'], 'machine')).machine
    expect(machine).toMatchObject({ generation: before + 1, state: 'active.running.steady' })
    const json = await run('reload', '-s', socket, '-j')
    expect(JSON.parse(json.stdout)).toEqual({
      kind: 'reload',
      outcome: 'complete',
      generation: before + 2,
      master: corral.pid,
    })
    expect(await run('reload', '--no-wait', '-s', socket)).toMatchObject({
      code: 0,
      stdout: `sent HUP to master ${corral.pid}\n`,
    })
  })

  it('a reload whose new workers cannot boot: corral reload says it was abandoned and why, exit 1', async ({
    signal,
  }) => {
    const dir = mkdtempSync(join(tmpdir(), 'corral-reload-'))
    const app = join(dir, 'app.ts')
    copyFileSync(fixture('app-pid.ts'), app)
    const port = await freePort()
    const corral = startCorral(['-w', '1', '-b', `127.0.0.1:${port}`, app], { signal })
    try {
      await corral.untilReady()
      writeFileSync(app, 'export default (\n')
      const r = await run('reload', '-s', corral.controlSocket!)
      expect(r.code).toBe(1)
      expect(r.stdout).toMatch(
        new RegExp(
          `^reload abandoned: Reload abandoned: a worker of generation 1 exited with code 4 while booting; generation 0 keeps serving, with its settings \\(master ${corral.pid}\\)\n$`,
        ),
      )
      expect((await get(`http://127.0.0.1:${port}`)).status).toBe(200)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it('corral stop returns once the master is gone', async ({ signal }) => {
    const { corral, socket } = await serve(['-w', '2'], { signal })
    const r = await run('stop', '-s', socket)
    expect(r).toMatchObject({ code: 0, stdout: `sent TERM to master ${corral.pid}\nmaster ${corral.pid} stopped\n` })
    expect(isAlive(corral.pid)).toBe(false)
  })

  it('corral stop gives up on a master that does not go, past its graceful timeout: the reason, exit 1', async ({
    signal,
  }) => {
    const dir = mkdtempSync(join(tmpdir(), 'corral-stop-'))
    // An onExit hook that never settles: the master stays after its workers have gone.
    writeFileSync(
      join(dir, 'corral.config.ts'),
      'export default { onExit: () => new Promise((r) => setTimeout(r, 3_600_000)) }\n',
    )
    try {
      const { corral, socket } = await serve(['-w', '1', '--graceful-timeout', '1'], { cwd: dir, signal })
      const r = await run('stop', '-s', socket)
      expect(r).toEqual({
        code: 1,
        stdout: `sent TERM to master ${corral.pid}\n`,
        stderr: `corral ctl: master ${corral.pid} is still running 16 s after TERM (its graceful timeout is 1 s); see its log\n`,
      })
      expect(isAlive(corral.pid)).toBe(true)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})

describe('commands no signal has', () => {
  it('worker kill PID stops that worker gracefully and replaces it; worker remove N takes N at once', async ({
    signal,
  }) => {
    const { corral, socket } = await serve(['-w', '2'], { signal })
    const [victim, other] = corral.workers()
    const sent = await ctl('-s', socket, 'worker', 'kill', String(victim))
    expect(sent.stdout).toBe(`sent KILL_WORKER (worker pid ${victim}) to master ${corral.pid}\n`)
    await waitFor(() => !isAlive(victim!), { ...STARTED, what: `worker ${victim} gone` })
    await waitFor(
      async () => {
        const pids = (await running(socket)).map((w) => w.pid)
        return pids.length === 2 && !pids.includes(victim!) && pids.includes(other!)
      },
      { ...STARTED, what: 'a replacement beside the other worker' },
    )
    // A graceful stop asked for, not a crash: counted as what it is.
    await waitFor(async () => (await data(socket, ['show', 'stats'], 'stats')).stats.restarts.killed === 1, {
      ...STARTED,
      what: 'the ctl kill counted as a restart',
    })
    expect((await data(socket, ['show', 'stats'], 'stats')).stats.restarts.crash).toBe(0)

    const notAWorker = await ctl('-s', socket, 'worker', 'kill', String(corral.pid))
    expect(notAWorker.code).toBe(1)
    expect(notAWorker.stderr).toMatch(
      new RegExp(`corral ctl: "${corral.pid}" is not the pid of a worker \\(they are: \\d+, \\d+\\)`),
    )

    await ctl('-s', socket, 'worker', 'add', '2')
    await untilRunning(socket, 4)
    expect((await ctl('-s', socket, 'worker', 'remove', '3')).stdout).toMatch(
      /sent REMOVE_WORKERS \(3 worker\(s\): 4 -> 1\)/,
    )
    await untilRunning(socket, 1)
    await corral.waitForLog(/Number of workers: 4 -> 1/)
    // Never below one, and the answer says how many go.
    expect((await ctl('-s', socket, 'worker', 'remove', '2')).stdout).toMatch(
      /sent REMOVE_WORKERS \(0 of 2 worker\(s\) asked for, one worker is the minimum: 1 -> 1\)/,
    )
    await corral.waitForLog(/worker remove ignored: one worker is the minimum/)
    expect((await data(socket, ['show', 'machine'], 'machine')).machine.target).toBe(1)
  })
})

describe('answers', () => {
  it('-j prints JSON that parses; tables for people; show config says where values came from', async ({ signal }) => {
    const { corral, socket, url } = await serve(['-w', '2', '--max-requests', '1000'], { signal })
    await get(url)
    const all = JSON.parse((await ctl('-s', socket, '-j', 'show', 'all')).stdout) as {
      kind: 'all'
      machine: MachineSummary
      workers: WorkerRow[]
      stats: MasterStats
    }
    expect(all.machine.pid).toBe(corral.pid)
    expect(all.workers.map((w) => w.pid).sort()).toEqual(corral.workers())
    expect(all.workers.every((w) => w.state === 'running' && w.generation === 0)).toBe(true)
    const config = JSON.parse((await ctl('-s', socket, '-j', 'show', 'config')).stdout) as {
      settings: { name: string; value: unknown; source: string }[]
    }
    expect(config.settings.find((s) => s.name === 'maxRequests')).toEqual({
      name: 'maxRequests',
      value: 1000,
      source: 'command line',
    })
    expect(config.settings.find((s) => s.name === 'keepAlive')).toMatchObject({ value: 2, source: 'default' })

    const table = (await ctl('-s', socket, 'show', 'workers')).stdout.split('\n')
    expect(table[0]).toMatch(/^\s*PID\s+GEN\s+STATE\s+AGE\s+REQUESTS\s+INFLIGHT\s+CONNS\s+RSS\s+CPU%\s+HEARTBEAT$/)
    expect(table.filter((l) => /\brunning\b/.test(l))).toHaveLength(2)
    const listeners = (await ctl('-s', socket, 'show', 'listeners')).stdout
    expect(listeners).toMatch(new RegExp(`${url}\\s+\\d+\\s+2048\\s+0`))

    const unknown = await ctl('-s', socket, 'frobnicate')
    expect(unknown.code).toBe(1)
    expect(unknown.stderr).toBe('corral ctl: unknown command "frobnicate"; try help\n')
    const badCount = await ctl('-s', socket, '-j', 'worker', 'add', 'lots')
    expect(badCount.code).toBe(1)
    expect(JSON.parse(badCount.stdout)).toEqual({ error: expect.stringMatching(/expected a number of workers/) })
    // Another protocol version is refused, in a sentence.
    expect(await ask(socket, ['show', 'machine'], 2)).toEqual({
      v: 1,
      id: 7,
      ok: false,
      error: 'protocol version 2 is not spoken here (this master speaks 1)',
    })
  })

  it('the interactive prompt reads commands line by line', async ({ signal }) => {
    const { socket, corral } = await serve(['-w', '1'], { signal })
    const out = await new Promise<string>((resolve) => {
      const child = execFile(process.execPath, [BIN, 'ctl', '-s', socket], (_err, stdout) => resolve(stdout))
      child.stdin!.end('show machine\nhelp\nquit\nshow workers\n')
    })
    expect(out).toMatch(new RegExp(`^pid:\\s+${corral.pid}$`, 'm'))
    expect(out).toMatch(/^worker add \[N\]$/m)
    // Nothing after quit.
    expect(out).not.toMatch(/PID\s+GEN/)
  })
})

describe('the socket file', () => {
  it('has mode 0600, or --control-socket-mode', async ({ signal }) => {
    const dir = mkdtempSync(join(tmpdir(), 'corral-ctl-'))
    const a = await serve(['-w', '1', '--control-socket', join(dir, 'a.ctl')], { signal })
    const b = await serve(['-w', '1', '--control-socket', join(dir, 'b.ctl'), '--control-socket-mode', '0660'], {
      signal,
    })
    expect(statSync(join(dir, 'a.ctl')).mode & 0o777).toBe(0o600)
    expect(statSync(join(dir, 'b.ctl')).mode & 0o777).toBe(0o660)
    expect(statSync(join(dir, 'a.ctl')).isSocket()).toBe(true)
    expect(a.corral.log()).toContain(`Control socket: ${join(dir, 'a.ctl')}`)
    expect(b.corral.log()).toContain(`Control socket: ${join(dir, 'b.ctl')}`)
  })

  it('a path corral cannot listen on: a warning, and corral serves without a control socket', async ({ signal }) => {
    const { corral, url } = await serve(['-w', '1', '--control-socket', '/nonexistent-corral-dir/corral.ctl'], {
      signal,
      withoutSocket: true,
    })
    expect(corral.log()).toMatch(
      /Control socket: cannot listen on \/nonexistent-corral-dir\/corral\.ctl \(E[A-Z]+\); running without one/,
    )
    expect((await get(url)).status).toBe(200)
  })

  it('a second corral in the same directory leaves the first one its socket', async ({ signal }) => {
    const cwd = mkdtempSync(join(tmpdir(), 'corral-two-'))
    const first = await serve(['-w', '1'], { cwd, signal })
    const second = await serve(['-w', '1'], { cwd, signal, withoutSocket: true })
    expect(second.corral.log()).toMatch(
      new RegExp(`another master answers on ${join(cwd, 'corral.ctl')}; running without one`),
    )
    second.corral.signal('SIGTERM')
    await second.corral.exited
    // Still the first master's, still there.
    expect((await data(first.socket, ['show', 'machine'], 'machine')).machine.pid).toBe(first.corral.pid)
    expect((await run('status', '-s', join(cwd, 'corral.ctl'))).stdout).toMatch(
      new RegExp(`pid:\\s+${first.corral.pid}`),
    )
  })

  it('a dead master’s socket: ctl says so by name; the next corral replaces it', async ({ signal }) => {
    const cwd = mkdtempSync(join(tmpdir(), 'corral-dead-'))
    const path = join(cwd, 'corral.ctl')
    const missing = await ctl('-s', path, 'show', 'workers')
    expect(missing).toMatchObject({ code: 1, stdout: '' })
    expect(missing.stderr).toBe(`corral ctl: no control socket at ${path}: is corral running here? (give -s PATH)\n`)

    const dead = await serve(['-w', '1'], { cwd, signal })
    process.kill(dead.corral.pid, 'SIGKILL')
    await dead.corral.exited
    expect(statSync(path).isSocket()).toBe(true)
    const stale = await ctl('-s', path, 'show', 'workers')
    expect(stale.code).toBe(1)
    expect(stale.stderr).toBe(
      `corral ctl: nothing answers on ${path}: the master that made it is gone (a stale socket)\n`,
    )

    const next = await serve(['-w', '1'], { cwd, signal })
    expect(next.corral.log()).not.toMatch(/another master answers/)
    expect((await data(path, ['show', 'machine'], 'machine')).machine.pid).toBe(next.corral.pid)
  })
})

describe('ctl top', () => {
  for (const [key, name] of [
    ['q', 'q'],
    ['\x03', 'Ctrl-C'],
  ] as const) {
    it(`on a terminal: a live table; ${name} quits and gives the screen back`, async ({ signal }) => {
      const { corral, socket } = await serve(['-w', '2'], { signal })
      // A real pseudo-terminal: util-linux script runs the command on one and copies our stdin to it.
      const command = [process.execPath, BIN, 'ctl', '-s', socket, 'top'].map((w) => `'${w}'`).join(' ')
      const top = spawn('script', ['-qfec', command, '/dev/null'], { stdio: ['pipe', 'pipe', 'pipe'], signal })
      let screen = ''
      top.stdout.on('data', (chunk: Buffer) => {
        screen += chunk.toString('latin1')
      })
      const exited = new Promise<number | null>((resolve) => top.on('exit', (code) => resolve(code)))
      await waitFor(() => /PID\s+STATE\s+REQ\/S\s+INFLIGHT\s+RSS\s+CPU%\s+HEARTBEAT/.test(screen), {
        ...STARTED,
        what: 'a frame',
      })
      expect(screen).toMatch(
        new RegExp(`corral master ${corral.pid}  active\\.running\\.steady  workers 2/2  listen queue 0`),
      )
      for (const pid of corral.workers()) expect(screen).toMatch(new RegExp(`${pid}  running`))
      // The alternate screen, cursor hidden, on the way in.
      expect(screen.startsWith('\x1b[?1049h\x1b[?25l')).toBe(true)
      top.stdin.write(key)
      expect(await exited).toBe(0)
      // Cursor shown and the screen as it was, on the way out.
      expect(screen.endsWith('\x1b[?25h\x1b[?1049l')).toBe(true)
    })
  }

  it('not on a terminal: a plain line per refresh', async ({ signal }) => {
    const { corral, socket } = await serve(['-w', '1'], { signal })
    const { code, stdout } = await ctl('-s', socket, 'top', '-n', '2')
    expect(code).toBe(0)
    const lines = stdout.trimEnd().split('\n')
    expect(lines).toHaveLength(2)
    const [worker] = corral.workers()
    for (const line of lines)
      expect(line).toMatch(
        new RegExp(
          `^\\d{4}-\\d\\d-\\d\\dT[\\d:.]+Z state=active\\.running\\.steady workers=1/1 queue=0 req/s=\\d+\\.\\d inflight=0 \\[${worker} running \\d+\\.\\dr/s rss=\\d+M cpu=[\\d.-]+\\]$`,
        ),
      )
    expect(stdout).not.toContain('\x1b')
  })
})

describe('through a USR2 upgrade', () => {
  /** A master serving a copy of the app, so a test can break the code on disk. */
  async function deployed(signal: AbortSignal) {
    const dir = mkdtempSync(join(tmpdir(), 'corral-ctl-upgrade-'))
    const app = join(dir, 'app.ts')
    copyFileSync(fixture('app-pid.ts'), app)
    const port = await freePort()
    const socket = join(dir, 'corral.ctl')
    const corral = startCorral(['-w', '1', '-b', `127.0.0.1:${port}`, '--control-socket', socket, app], { signal })
    await corral.untilReady()
    return { corral, app, socket, url: `http://127.0.0.1:${port}` }
  }
  const pidAt = async (path: string) => {
    try {
      return (await data(path, ['show', 'machine'], 'machine')).machine.pid
    } catch {
      return undefined
    }
  }

  it('USR2 keeps both masters reachable: the old one at PATH.2; the path ends with the one that stays', async ({
    signal,
  }) => {
    const { corral, socket, url } = await deployed(signal)
    corral.signal('SIGUSR2')
    const fresh = await waitFor(
      async () => {
        const pid = await pidAt(socket)
        return pid !== undefined && pid !== corral.pid && pid
      },
      { ...STARTED, what: 'the new master on PATH' },
    )
    track(fresh)
    // It listens on PATH as soon as it starts; the old master hears when it is ready.
    expect(await pidAt(`${socket}.2`)).toBe(corral.pid)
    await waitFor(
      async () => (await data(`${socket}.2`, ['show', 'machine'], 'machine')).machine.childMaster === 'ready',
      { ...STARTED, what: 'the old master to hear the new one is ready' },
    )
    expect((await data(socket, ['show', 'machine'], 'machine')).machine.ready).toBe(true)
    corral.signal('SIGQUIT')
    await corral.exited
    expect(existsSync(`${socket}.2`)).toBe(false)
    expect(await pidAt(socket)).toBe(fresh)
    expect((await get(url)).status).toBe(200)
    process.kill(fresh, 'SIGTERM')
    await waitFor(() => !existsSync(socket), { ...STARTED, what: 'the new master to remove its socket' })
  })

  it('ctl upgrade does the whole hand-over, as corral upgrade does', async ({ signal }) => {
    const { corral, socket, url } = await deployed(signal)
    const result = await ctl('-s', socket, 'upgrade')
    const fresh = Number(/done: master (\d+) serves/.exec(result.stdout)?.[1])
    if (fresh) track(fresh)
    expect(result).toMatchObject({ code: 0, stderr: '' })
    expect(result.stdout).toContain(`sent USR2 to master ${corral.pid}`)
    expect(await corral.exited).toEqual({ code: 0, signal: null })
    expect(await pidAt(socket)).toBe(fresh)
    expect(existsSync(`${socket}.2`)).toBe(false)
    expect((await get(url)).body).not.toBe('')
    expect((await data(socket, ['show', 'machine'], 'machine')).machine.state).toBe('active.running.steady')
  })

  it('ctl upgrade with code that cannot load: rolled back, the old master keeps its path', async ({ signal }) => {
    const { corral, socket, app } = await deployed(signal)
    writeFileSync(app, "throw new Error('broken deploy')\n")
    const result = await ctl('-s', socket, 'upgrade')
    expect(result.code).toBe(1)
    expect(result.stderr).toBe(
      `corral ctl: the new master failed before it was ready; master ${corral.pid} keeps serving (see its log)\n`,
    )
    expect(await pidAt(socket)).toBe(corral.pid)
    expect(existsSync(`${socket}.2`)).toBe(false)
  })
})
