// WINCH and terminals, end to end (spec/signals.md): a terminal sends WINCH
// to its foreground process group on every resize, so a master in a
// terminal's foreground ignores it, however it was started (`npx corral`,
// `npm start`: then the master is not its group's leader). Without a terminal
// (-D, a service manager, a test runner's detached child) WINCH is an
// operator's: every worker stops and the master stays. Real pseudo-terminals
// (util-linux's `script`), resized with `stty` as a terminal emulator would.
import { spawn, spawnSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { BIN, ROOT, fixture, freePort, killAll, startCorral, track, waitFor } from './helpers/corral.ts'
import { answer, untilMaster, untilReady } from './helpers/control.ts'
import { get } from './helpers/load.ts'

afterEach(killAll)
// npx and npm start a few Node processes before corral's own: on a loaded machine that alone takes seconds.
const SLOW = { timeout: 180_000 }

const hasScript = spawnSync('script', ['--version']).status === 0
let dir = ''
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'corral-tty-'))
})
afterEach(() => rmSync(dir, { recursive: true, force: true }))

/** Runs `command` (a shell line) in `cwd` on a new pseudo-terminal, as a terminal emulator would; returns its output so far. */
function inTerminal(command: string, cwd: string) {
  const child = spawn('script', ['-qfec', command, '/dev/null'], { cwd, stdio: ['pipe', 'pipe', 'pipe'] })
  track(child.pid!)
  let output = ''
  child.stdout.on('data', (c: Buffer) => (output += c.toString()))
  return { output: () => output }
}

/** Resizes the terminal the master's stdin is: the kernel sends WINCH to that terminal's foreground group. */
function resize(masterPid: number, cols: number): void {
  const tty = readlinkSync(`/proc/${masterPid}/fd/0`)
  expect(tty).toMatch(/^\/dev\/pts\//)
  const r = spawnSync('stty', ['-F', tty, 'cols', String(cols), 'rows', '40'])
  expect(r.status, r.stderr.toString()).toBe(0)
}

async function resizedKeepsServing(
  command: (port: number, socket: string) => string,
  cwd: string,
  signal: AbortSignal,
) {
  const port = await freePort()
  const socket = join(dir, 'corral.ctl')
  const terminal = inTerminal(command(port, socket), cwd)
  const machine = await untilReady(socket, signal)
  track(machine.pid)
  const workers = (await answer(socket, ['show', 'workers'], 'workers')).workers.map((w) => w.pid)
  // One resize at a time: signals of one kind that arrive together are delivered once. Each is ignored at
  // least once more than before it (script and npm may resize the terminal themselves as they start).
  const ignored = () => (terminal.output().match(/WINCH ignored: the master runs in the foreground/g) ?? []).length
  for (const [i, cols] of [100, 120, 90].entries()) {
    const before = ignored()
    resize(machine.pid, cols)
    await waitFor(() => ignored() > before, { what: `resize ${i + 1}'s WINCH ignored`, timeoutMs: 120_000 })
  }
  const after = (await answer(socket, ['show', 'machine'], 'machine')).machine
  expect(after.state).toBe('active.running.steady')
  expect((await answer(socket, ['show', 'workers'], 'workers')).workers.map((w) => w.pid)).toEqual(workers)
  expect((await get(`http://127.0.0.1:${port}`)).status).toBe(200)
}

describe.skipIf(!hasScript)('in the foreground of a terminal, a resize changes nothing', SLOW, () => {
  it('npx corral, resized three times, keeps every worker serving', async ({ signal }) => {
    await resizedKeepsServing(
      (port, socket) => `npx corral -w 2 -b 127.0.0.1:${port} --control-socket ${socket} ${fixture('app-pid.ts')}`,
      ROOT,
      signal,
    )
  })

  it('npm start (corral from node_modules/.bin), resized three times, keeps every worker serving', async ({
    signal,
  }) => {
    const app = join(dir, 'app')
    mkdirSync(join(app, 'node_modules', '.bin'), { recursive: true })
    symlinkSync(BIN, join(app, 'node_modules', '.bin', 'corral'))
    const startScript = (port: number, socket: string) => {
      const start = `corral -w 2 -b 127.0.0.1:${port} --control-socket ${socket} ${fixture('app-pid.ts')}`
      writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'tty-app', private: true, scripts: { start } }))
      return 'npm start'
    }
    await resizedKeepsServing(startScript, app, signal)
  })
})

describe('with no terminal, WINCH stops every worker and the master stays', () => {
  it('a master in a session of its own (a service, a detached child)', async ({ signal }) => {
    const port = await freePort()
    const corral = startCorral(['-w', '2', '-b', `127.0.0.1:${port}`, fixture('app-pid.ts')], { signal })
    const socket = corral.controlSocket!
    await untilReady(socket, signal)
    corral.signal('SIGWINCH')
    await untilMaster(
      socket,
      ['show', 'machine'],
      'machine',
      ({ machine }) => machine.state === 'active.running.idle' && machine.workers === 0,
      signal,
    )
    expect(corral.workers()).toEqual([])
  })

  it('-D: the daemon drains on WINCH and a HUP brings workers back', async ({ signal }) => {
    const port = await freePort()
    const socket = join(dir, 'corral.ctl')
    const r = spawnSync(
      process.execPath,
      [BIN, '-D', '-w', '1', '-b', `127.0.0.1:${port}`, '--control-socket', socket, fixture('app-pid.ts')],
      { cwd: ROOT, encoding: 'utf8' },
    )
    // Tracked first, from what -D printed: a daemon outlives its launcher, so a failed wait must not orphan it.
    const daemon = Number(/master pid (\d+)/.exec(r.stdout)?.[1])
    if (daemon > 0) track(daemon)
    expect(r.status, r.stderr).toBe(0)
    const machine = await untilReady(socket, signal)
    expect(machine.pid).toBe(daemon)
    process.kill(machine.pid, 'SIGWINCH')
    await untilMaster(
      socket,
      ['show', 'machine'],
      'machine',
      ({ machine: m }) => m.state === 'active.running.idle',
      signal,
    )
    process.kill(machine.pid, 'SIGHUP')
    await untilReady(socket, signal)
    expect((await get(`http://127.0.0.1:${port}`)).status).toBe(200)
  })
})
