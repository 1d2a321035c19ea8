// --bind end to end with a real master and workers: several addresses at
// once (IPv4, IPv6, a unix socket), all served; a unix socket's stale file
// replaced, its mode set by --umask, the file removed on a clean stop;
// fd://N; --backlog as the kernel applies it.
import { execFile, spawn, spawnSync } from 'node:child_process'
import { existsSync, lstatSync, mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { openListeners, type Listener } from '../src/net/listeners.ts'
import { BIN, fixture, freePort, killAll, startCorral, track, waitFor } from './helpers/corral.ts'
import { freeDualPort, getFrom, hasIPv6Loopback, hasSs, listeningOn } from './helpers/sockets.ts'

const APP = fixture('app-listener-info.ts')
const env = { ...process.env }
delete env['WEB_CONCURRENCY']
delete env['CORRAL_CMD_ARGS']

const tmp = mkdtempSync(join(tmpdir(), 'corral-bind-'))
let ipv6 = false
beforeAll(async () => {
  ipv6 = await hasIPv6Loopback()
})
afterEach(killAll)
afterAll(() => rmSync(tmp, { recursive: true, force: true }))

const pidOf = (body: string) => (JSON.parse(body) as { pid: number }).pid

function curlUnix(sock: string): Promise<string> {
  return new Promise((resolve, reject) =>
    execFile('curl', ['-sS', '--max-time', '5', '--unix-socket', sock, 'http://corral/'], (err, out) =>
      err ? reject(err) : resolve(out),
    ),
  )
}

describe('--bind', () => {
  it('serves every address at once: IPv4, IPv6 and a unix socket (stale file replaced, --umask applied, removed on a clean stop)', async ({
    signal,
  }) => {
    const port = await freeDualPort()
    const dir = mkdtempSync(join(tmp, 'unix-'))
    const sock = join(dir, 'app.sock')
    // A stale socket file, as a SIGKILLed server leaves it.
    spawnSync(process.execPath, [
      '-e',
      `require('node:net').createServer().listen(${JSON.stringify(sock)}, () => process.kill(process.pid, 'SIGKILL'))`,
    ])
    expect(lstatSync(sock).isSocket()).toBe(true)

    const binds = ['-b', `127.0.0.1:${port}`, ...(ipv6 ? ['-b', `[::1]:${port}`] : []), '-b', `unix:${sock}`]
    const c = startCorral(['-w', '2', '-m', '007', ...binds, APP], { env, signal })
    await c.untilReady()
    expect(c.log()).toContain(`Listening at: http://127.0.0.1:${port} (${c.pid})`)
    if (ipv6) expect(c.log()).toContain(`Listening at: http://[::1]:${port} (${c.pid})`)
    expect(c.log()).toContain(`Listening at: unix:${sock} (${c.pid})`)

    const workers = c.workers()
    expect(workers).toHaveLength(2)
    const answers = [
      await getFrom({ host: '127.0.0.1', port }),
      ...(ipv6 ? [await getFrom({ host: '::1', port })] : []),
      await getFrom({ socketPath: sock }),
    ]
    for (const a of answers) {
      expect(a.status).toBe(200)
      expect(workers).toContain(pidOf(a.body))
    }
    expect(workers).toContain(pidOf(await curlUnix(sock)))
    expect(lstatSync(sock).mode & 0o777).toBe(0o770) // 0777 & ~007

    c.signal('SIGTERM')
    expect((await c.exited).code).toBe(0)
    expect(existsSync(sock)).toBe(false)
    expect(readdirSync(dir)).toEqual([]) // no temporary name left either
  })

  it('--backlog reaches listen(2) and stays once the workers listen too; 2048 by default', async ({ signal, skip }) => {
    if (!hasSs()) skip('ss (iproute2) is not installed: .ci/run installs it')
    const [a, b] = [await freePort(), await freePort()]
    const byDefault = startCorral(['-w', '2', '-b', `127.0.0.1:${a}`, APP], { env, signal })
    const set = startCorral(['-w', '2', '--backlog', '77', '-b', `127.0.0.1:${b}`, APP], { env, signal })
    await Promise.all([byDefault, set].map((c) => c.untilReady()))
    // One shared socket each, held by the master and both workers.
    expect(listeningOn(a)).toEqual([
      { backlog: 2048, pids: [byDefault.pid, ...byDefault.workers()].sort((x, y) => x - y) },
    ])
    expect(listeningOn(b)).toEqual([{ backlog: 77, pids: [set.pid, ...set.workers()].sort((x, y) => x - y) }])
  })

  it('fd://N serves a socket inherited from the parent, which keeps it listening after corral stops', async ({
    signal,
  }) => {
    // This test process plays the parent: it binds and listens, never accepts.
    const [l] = openListeners([{ kind: 'tcp', host: '127.0.0.1', port: 0 }]) as [Listener]
    try {
      const port = Number(new URL(l.address).port)
      const child = spawn(process.execPath, [BIN, '-w', '1', '-b', 'fd://3', APP], {
        env,
        stdio: ['ignore', 'pipe', 'pipe', l.fd],
      })
      track(child.pid!)
      signal.addEventListener('abort', () => child.kill('SIGKILL'))
      let log = ''
      child.stderr!.on('data', (d: Buffer) => (log += d.toString()))
      const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)))
      await waitFor(() => /Ready: 1 worker/.test(log), { what: `corral to serve; log:\n${log}` })
      expect(log).toContain(`Listening at: http://127.0.0.1:${port}`)
      const a = await getFrom({ host: '127.0.0.1', port })
      expect(a.status).toBe(200)
      child.kill('SIGTERM')
      expect(await exited).toBe(0)
      // Still listening in the parent: a connection is queued, not refused.
      const s = connect(port, '127.0.0.1')
      await new Promise<void>((resolve, reject) => s.once('connect', resolve).once('error', reject))
      s.destroy()
    } finally {
      l.close()
    }
  })
})
