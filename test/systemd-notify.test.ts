// systemd's notify protocol end to end: a real unix datagram socket stands in
// for systemd (test/fixtures/notify-socket.py, which reads the sender's
// credentials and closes passed fds as systemd does), $NOTIFY_SOCKET points
// corral at it, and the messages must come in the order systemd needs them:
// READY=1 once serving, RELOADING=1 with MONOTONIC_USEC at a HUP and READY=1
// when it completes, MAINPID= from the new master after USR2, STOPPING=1 at a
// stop (and not from a master handing over), WATCHDOG=1 when asked for.
import { execFileSync, spawn } from 'node:child_process'
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { fixture, freePort, killAll, startCorral, track, waitFor } from './helpers/corral.ts'

const dir = mkdtempSync(join(tmpdir(), 'corral-notify-'))
afterEach(killAll)
afterAll(() => rmSync(dir, { recursive: true, force: true }))

const hasNotify = (() => {
  try {
    execFileSync('systemd-notify', ['--version'], { stdio: 'ignore' })
    execFileSync('python3', ['--version'], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
})()
const isRoot = process.getuid?.() === 0

interface Message {
  /** The sender's pid, from SCM_CREDENTIALS. */
  pid: number
  fields: Record<string, string>
  /** When the test read it, on the clock MONOTONIC_USEC uses. */
  readUsec: bigint
}

const monotonicUsec = () => process.hrtime.bigint() / 1000n

/** Starts the stand-in for systemd; resolves once its socket is bound. */
async function notifySocket(name: string): Promise<{ path: string; messages: Message[] }> {
  const path = join(dir, `${name}.sock`)
  const child = spawn('python3', [fixture('notify-socket.py'), path], { stdio: ['ignore', 'pipe', 'inherit'] })
  track(child.pid!)
  const messages: Message[] = []
  let listening = false
  createInterface({ input: child.stdout! }).on('line', (line) => {
    const m = JSON.parse(line) as { listening?: string; pid: number; text: string }
    if (m.listening) {
      listening = true
      return
    }
    // systemd-notify's barrier, not a message of corral's.
    if (m.text === 'BARRIER=1') return
    const fields = Object.fromEntries(
      m.text.split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
    )
    messages.push({ pid: m.pid, fields, readUsec: monotonicUsec() })
  })
  await waitFor(() => listening, { what: 'the notify socket' })
  return { path, messages }
}

/** How long a wait that spans a boot of corral may take before it counts as a hang (2 cores shared by many tests). */
const BOOT_MS = 30_000

const nextMessage = (messages: Message[], from: number, test: (m: Message) => boolean, what: string) =>
  waitFor(() => messages.slice(from).find(test), { what, timeoutMs: BOOT_MS })

describe.skipIf(!hasNotify)('systemd notify protocol ($NOTIFY_SOCKET)', { timeout: 4 * BOOT_MS }, () => {
  it('READY=1 once serving, RELOADING=1 with MONOTONIC_USEC at a HUP and READY=1 when it completes, STOPPING=1 at a stop', async ({
    signal,
  }) => {
    const { path, messages } = await notifySocket('lifecycle')
    const port = await freePort()
    const corral = startCorral(['-w', '2', '-b', `127.0.0.1:${port}`, fixture('app-pid.ts')], {
      env: { NOTIFY_SOCKET: path },
      signal,
    })
    const ready = await nextMessage(messages, 0, (m) => m.fields.READY === '1', 'READY=1')
    expect(ready.fields.STATUS).toBe('2 workers serving, generation 0')
    // Not before the master says so in its log: both mean every worker serves.
    expect(corral.log()).toMatch(/Ready: 2 worker\(s\) serving/)
    // Only a master that took over from another names itself.
    expect(ready.fields.MAINPID).toBeUndefined()
    // The protocol is the master's: its workers do not get the socket (with NotifyAccess=all systemd would listen to them).
    for (const pid of corral.workers()) {
      const environ = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0')
      expect(
        environ.filter((v) => /^(NOTIFY_SOCKET|WATCHDOG_USEC|WATCHDOG_PID)=/.test(v)),
        `worker ${pid}`,
      ).toEqual([])
    }
    // As root, systemd-notify sends with its parent's credentials: the master's.
    if (isRoot) expect(ready.pid).toBe(corral.pid)
    // Nothing about reloading or stopping came before it.
    expect(messages.slice(0, messages.indexOf(ready)).filter((m) => m.fields.RELOADING || m.fields.STOPPING)).toEqual(
      [],
    )

    const mark = messages.length
    const beforeHup = monotonicUsec()
    corral.signal('SIGHUP')
    const reloading = await nextMessage(messages, mark, (m) => m.fields.RELOADING === '1', 'RELOADING=1')
    // The timestamp is taken between the HUP and systemd reading it, on CLOCK_MONOTONIC.
    const stamp = BigInt(reloading.fields.MONOTONIC_USEC ?? '0')
    expect(stamp).toBeGreaterThanOrEqual(beforeHup)
    expect(stamp).toBeLessThanOrEqual(reloading.readUsec)
    expect(reloading.fields.STATUS).toMatch(/^reloading: generation 1 starting/)
    const reloaded = await nextMessage(messages, mark, (m) => m.fields.READY === '1', 'READY=1 after the reload')
    expect(messages.indexOf(reloaded)).toBeGreaterThan(messages.indexOf(reloading))
    expect(reloaded.fields.STATUS).toBe('2 workers serving, generation 1')
    await corral.untilReloaded(1)

    const stopMark = messages.length
    corral.signal('SIGTERM')
    const stopping = await nextMessage(messages, stopMark, (m) => m.fields.STOPPING === '1', 'STOPPING=1')
    expect(stopping.fields.STATUS).toMatch(/^stopping: /)
    expect((await corral.exited).code).toBe(0)
    // The last word is the stop's: no READY=1 after it.
    expect(messages.slice(messages.indexOf(stopping)).filter((m) => m.fields.READY)).toEqual([])
  })

  it('USR2: the new master sends MAINPID= with its READY=1; the old one hands over without STOPPING=1', async ({
    signal,
  }) => {
    const { path, messages } = await notifySocket('upgrade')
    const port = await freePort()
    const pidfile = join(dir, 'upgrade.pid')
    const old = startCorral(
      ['-w', '1', '-b', `127.0.0.1:${port}`, '-p', pidfile, '--upgrade', 'auto', fixture('app-pid.ts')],
      { env: { NOTIFY_SOCKET: path }, signal },
    )
    await nextMessage(messages, 0, (m) => m.fields.READY === '1', 'READY=1')
    const mark = messages.length
    old.signal('SIGUSR2')
    const handover = await nextMessage(messages, mark, (m) => m.fields.MAINPID !== undefined, 'MAINPID=')
    const fresh = Number(handover.fields.MAINPID)
    track(fresh)
    expect(fresh).not.toBe(old.pid)
    expect(handover.fields.READY).toBe('1')
    await waitFor(() => readFileSync(pidfile, 'utf8').trim() === String(fresh), {
      what: 'the new pidfile',
      timeoutMs: BOOT_MS,
    })
    if (isRoot) expect(handover.pid).toBe(fresh)
    // --upgrade auto: the old master stops its workers and exits by itself.
    expect((await old.exited).code).toBe(0)
    const fromOld = messages.slice(mark).filter((m) => !isRoot || m.pid === old.pid)
    expect(fromOld.filter((m) => m.fields.STOPPING)).toEqual([])
    expect(fromOld.some((m) => m.fields.STATUS?.startsWith('handing over to the new master'))).toBe(true)

    // The service stops when the master systemd now knows stops.
    const stopMark = messages.length
    process.kill(fresh, 'SIGTERM')
    const stopping = await nextMessage(messages, stopMark, (m) => m.fields.STOPPING === '1', 'STOPPING=1')
    if (isRoot) expect(stopping.pid).toBe(fresh)
  })

  it('USR2 with code that cannot boot: the new master says nothing (no STOPPING=1), the old one serves on', async ({
    signal,
  }) => {
    const { path, messages } = await notifySocket('failed-upgrade')
    const port = await freePort()
    const app = join(dir, 'app.ts')
    copyFileSync(fixture('app-pid.ts'), app)
    const old = startCorral(['-w', '1', '-b', `127.0.0.1:${port}`, '-p', join(dir, 'failed.pid'), app], {
      env: { NOTIFY_SOCKET: path },
      signal,
    })
    await nextMessage(messages, 0, (m) => m.fields.READY === '1', 'READY=1')
    const mark = messages.length
    writeFileSync(app, "throw new Error('broken deploy')\n")
    old.signal('SIGUSR2')
    await old.waitForLog(/Re-exec failed: the new master exited with code 4 before it was ready/)
    // Its STOPPING=1 would have stopped the service: systemd takes it from any process of the unit.
    expect(messages.slice(mark).filter((m) => m.fields.STOPPING || m.fields.READY || m.fields.MAINPID)).toEqual([])
    if (isRoot) expect(messages.slice(mark).filter((m) => m.pid !== old.pid)).toEqual([])
    expect(old.child.exitCode).toBeNull()
  })

  it('WATCHDOG=1 twice per $WATCHDOG_USEC when it is meant for this master', async ({ signal }) => {
    const { path, messages } = await notifySocket('watchdog')
    const port = await freePort()
    const corral = startCorral(['-w', '1', '-b', `127.0.0.1:${port}`, fixture('app-pid.ts')], {
      // 0.4 s: a ping every 0.2 s. WATCHDOG_PID unset means "whoever reads this".
      env: { NOTIFY_SOCKET: path, WATCHDOG_USEC: '400000' },
      signal,
    })
    await nextMessage(messages, 0, (m) => m.fields.READY === '1', 'READY=1')
    const after = messages.length
    // Pings keep coming after readiness, not only the one at start.
    await waitFor(() => messages.slice(after).filter((m) => m.fields.WATCHDOG === '1').length >= 2, {
      what: 'two WATCHDOG=1 pings after READY=1',
      timeoutMs: BOOT_MS,
    })
    if (isRoot) expect(messages.filter((m) => m.fields.WATCHDOG).every((m) => m.pid === corral.pid)).toBe(true)
  })

  it('NOTIFY_SOCKET set where systemd-notify cannot run: one warning, and corral serves as usual', async ({
    signal,
  }) => {
    const { path, messages } = await notifySocket('no-sender')
    const port = await freePort()
    // No PATH to find systemd-notify on; corral itself runs by absolute paths.
    const corral = startCorral(['-w', '1', '-b', `127.0.0.1:${port}`, fixture('app-pid.ts')], {
      env: { NOTIFY_SOCKET: path, PATH: '/nonexistent' },
      signal,
    })
    await corral.untilReady()
    corral.signal('SIGHUP')
    await corral.untilReloaded(1)
    expect(corral.log().match(/NOTIFY_SOCKET is set but systemd-notify could not run/g)).toHaveLength(1)
    expect(messages).toEqual([])
    corral.signal('SIGTERM')
    expect((await corral.exited).code).toBe(0)
  })
})
