// systemd socket activation with the real systemd-socket-activate (Debian's
// systemd package): it binds the sockets, waits for the first connection,
// then execs corral with the sockets as fds 3… and LISTEN_FDS/LISTEN_PID set
// (LISTEN_PID is its own pid, which exec makes corral's). corral serves
// exactly those sockets, binds nothing else, and hides the variables from
// its workers.
import { execFileSync, spawn } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { BIN, childrenOf, fixture, freePort, isAlive, killAll, startCorral, track, waitFor } from './helpers/corral.ts'
import { getFrom } from './helpers/sockets.ts'

const APP = fixture('app-listener-info.ts')
const env = { ...process.env }
delete env['WEB_CONCURRENCY']
delete env['CORRAL_CMD_ARGS']

const tmp = mkdtempSync(join(tmpdir(), 'corral-systemd-'))
afterEach(killAll)
afterAll(() => rmSync(tmp, { recursive: true, force: true }))

function hasSocketActivate(): boolean {
  try {
    execFileSync('systemd-socket-activate', ['--version'], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
}

interface Info {
  pid: number
  env: { LISTEN_FDS: string | null; LISTEN_PID: string | null; LISTEN_FDNAMES: string | null }
}
const info = (body: string) => JSON.parse(body) as Info

describe('systemd socket activation', () => {
  it('serves the sockets systemd-socket-activate passes, binds nothing else, and hides LISTEN_* from the workers', async ({
    signal,
    skip,
  }) => {
    if (!hasSocketActivate())
      skip('systemd-socket-activate is not installed (Debian package systemd): .ci/run installs it')
    const [a, b, unused] = [await freePort(), await freePort(), await freePort()]
    const sock = join(tmp, 'activated.sock')
    // Only PATH, HOME, TERM and -E variables reach the program it execs.
    const child = spawn(
      'systemd-socket-activate',
      [
        '-l',
        `127.0.0.1:${a}`,
        '-l',
        `127.0.0.1:${b}`,
        '-l',
        sock,
        '--fdname=web:admin:local',
        process.execPath,
        BIN,
        '-w',
        '2',
        '-b',
        `127.0.0.1:${unused}`,
        APP,
      ],
      { env, stdio: ['ignore', 'pipe', 'pipe'] },
    )
    track(child.pid!)
    signal.addEventListener('abort', () => child.kill('SIGKILL'))
    let log = ''
    child.stdout!.on('data', (d: Buffer) => (log += d.toString()))
    child.stderr!.on('data', (d: Buffer) => (log += d.toString()))
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)))
    await waitFor(() => (log.match(/Listening on /g)?.length ?? 0) === 3, {
      what: `systemd-socket-activate to listen; log:\n${log}`,
    })

    // The first connection makes it exec corral; the request waits in the
    // socket's queue while corral boots, and is then answered.
    const first = info((await getFrom({ host: '127.0.0.1', port: a })).body)
    expect(log).toMatch(
      /Socket activation: serving 3 socket\(s\) from systemd \(web, admin, local\); --bind is not used/,
    )
    const master = child.pid!
    expect(isAlive(master)).toBe(true) // exec'd: corral is the process systemd-socket-activate was
    const workers = childrenOf(master)
    expect(workers).toHaveLength(2)
    expect(workers).toContain(first.pid)
    expect(first.env).toEqual({ LISTEN_FDS: null, LISTEN_PID: null, LISTEN_FDNAMES: null })

    for (const target of [{ host: '127.0.0.1', port: b }, { socketPath: sock }]) {
      const r = await getFrom(target)
      expect(r.status).toBe(200)
      expect(workers).toContain(info(r.body).pid)
    }
    await expect(getFrom({ host: '127.0.0.1', port: unused })).rejects.toThrow(/ECONNREFUSED/)

    child.kill('SIGTERM')
    expect(await exited).toBe(0)
    // The unix socket is systemd's: corral leaves its file alone.
    expect(existsSync(sock)).toBe(true)
  })

  it('LISTEN_PID naming another process: not our sockets; --bind is served and the variables are removed all the same', async ({
    signal,
  }) => {
    const port = await freePort()
    const c = startCorral(['-w', '1', '-b', `127.0.0.1:${port}`, APP], {
      env: { ...env, LISTEN_FDS: '1', LISTEN_PID: '1', LISTEN_FDNAMES: 'x' },
      signal,
    })
    await c.untilReady()
    expect(c.log()).not.toMatch(/Socket activation/)
    const r = info((await getFrom({ host: '127.0.0.1', port })).body)
    expect(r.env).toEqual({ LISTEN_FDS: null, LISTEN_PID: null, LISTEN_FDNAMES: null })
  })

  it('-D under socket activation is refused: exit 2, one line', async ({ signal }) => {
    // exec keeps the shell's pid, as systemd's own exec does.
    const c = startCorralViaShell(
      `LISTEN_PID=$$ LISTEN_FDS=1 exec "${process.execPath}" "${BIN}" -D -b 127.0.0.1:1 "${APP}"`,
      signal,
    )
    expect(await c.exited).toBe(2)
    expect(c.log()).toMatch(/^corral: error: -D\/--daemon: not with systemd socket activation \(LISTEN_FDS\)/m)
  })
})

function startCorralViaShell(script: string, signal: AbortSignal) {
  const child = spawn('sh', ['-c', script], { env, stdio: ['ignore', 'pipe', 'pipe'] })
  track(child.pid!)
  signal.addEventListener('abort', () => child.kill('SIGKILL'))
  let log = ''
  child.stderr!.on('data', (d: Buffer) => (log += d.toString()))
  child.stdout!.on('data', (d: Buffer) => (log += d.toString()))
  return { log: () => log, exited: new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code))) }
}
