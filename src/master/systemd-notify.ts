// systemd's notify protocol (sd_notify(3)) for a `Type=notify` or
// `Type=notify-reload` service: when $NOTIFY_SOCKET is set, the master tells
// systemd when it serves (READY=1), when a HUP starts and ends (RELOADING=1
// with MONOTONIC_USEC, then READY=1), when it stops (STOPPING=1), a STATUS=
// line as the workers change, its pid after a USR2 hand-over (MAINPID=), and
// WATCHDOG=1 pings when $WATCHDOG_USEC asks for them. spec/deploy.md.
//
// How the messages are sent: $NOTIFY_SOCKET is a unix *datagram* socket and
// Node can only open unix stream sockets, so each message goes through the
// `systemd-notify` program, which is installed wherever systemd runs. The
// trade-off against a native module: a fork and exec per message (a handful
// per reload, plus the watchdog pings), and messages sent one at a time so
// they arrive in order. In exchange systemd-notify waits until systemd has
// read each message (its barrier), and, run as root, sends it with the
// master's credentials (it names its parent as the sender); run as another
// user the sender is the systemd-notify process, so the unit needs
// `NotifyAccess=all`, which a USR2 hand-over needs anyway (the new master is
// not the main pid until its MAINPID= is read).
import { spawn } from 'node:child_process'
import type { Logger } from '../logging/log.ts'
import type { ChartStep } from './parts/chart.ts'
import { NOTIFY_ENV } from './reexec.ts'

export interface SystemdNotify {
  /** Serving: at start (with MAINPID= for a master that took over), and when a reload ends. */
  ready(status: string): void
  /** A HUP began: systemd's `Type=notify-reload` waits for the READY=1 that ends it. */
  reloading(status: string): void
  stopping(status: string): void
  status(status: string): void
  /** Stops the watchdog and waits for the messages already queued. */
  close(): Promise<void>
}

export interface SystemdNotifyOptions {
  log: Logger
  env?: NodeJS.ProcessEnv
}

/** systemd's own sender, installed wherever systemd runs. */
const PROGRAM = 'systemd-notify'

const NOTHING: SystemdNotify = {
  ready() {},
  reloading() {},
  stopping() {},
  status() {},
  close: () => Promise.resolve(),
}

export function createSystemdNotify({ log, env = process.env }: SystemdNotifyOptions): SystemdNotify {
  const socket = env.NOTIFY_SOCKET
  if (!socket) return NOTHING
  // A master another corral process launched (USR2's new master, -D's
  // daemon) is not the pid systemd started: it names itself when it serves.
  const tookOver = env[NOTIFY_ENV] === '1'
  let mainPidSent = false
  let broken = false

  // One systemd-notify at a time: separate senders could overtake each other.
  const queue: string[][] = []
  let sending: Promise<void> | undefined
  function send(lines: string[]): void {
    if (broken) return
    // A STATUS= line still waiting is out of date: the newer one replaces it.
    const last = queue.at(-1)
    if (last?.length === 1 && last[0]!.startsWith('STATUS=') && lines.length === 1 && lines[0]!.startsWith('STATUS='))
      queue.pop()
    // A watchdog ping still waiting says all a second one would.
    if (lines[0] === 'WATCHDOG=1' && queue.some((m) => m[0] === 'WATCHDOG=1')) return
    queue.push(lines)
    sending ??= drain().finally(() => {
      sending = undefined
    })
  }
  async function drain(): Promise<void> {
    for (let next = queue.shift(); next !== undefined && !broken; next = queue.shift()) await run(next)
  }
  function run(lines: string[]): Promise<void> {
    return new Promise((resolve) => {
      const child = spawn(PROGRAM, lines, {
        env: { PATH: env.PATH ?? '/usr/bin:/bin', NOTIFY_SOCKET: socket },
        stdio: ['ignore', 'ignore', 'pipe'],
      })
      let stderr = ''
      child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()))
      child.on('error', (err) => {
        // Not installed: nothing later would get through either.
        broken = true
        log.warning(`NOTIFY_SOCKET is set but ${PROGRAM} could not run (${err.message}): systemd is not told`)
        resolve()
      })
      child.on('exit', (code) => {
        if (code !== 0) log.warning(`${PROGRAM} ${lines.join(' ')} failed (exit ${code}): ${stderr.trim()}`)
        resolve()
      })
    })
  }

  // Pings prove this master's event loop turns; a stuck master misses them
  // and systemd restarts the service. WATCHDOG_PID names the process the
  // pings are wanted from: systemd's main pid, or, after a hand-over, the
  // master that started this one.
  const watchdogUsec = Number(env.WATCHDOG_USEC)
  const watchdogPid = env.WATCHDOG_PID === undefined ? undefined : Number(env.WATCHDOG_PID)
  const pingsWanted =
    Number.isSafeInteger(watchdogUsec) &&
    watchdogUsec > 0 &&
    (watchdogPid === undefined || watchdogPid === process.pid || (tookOver && watchdogPid === process.ppid))
  // Twice per period, as sd_watchdog_enabled(3) advises.
  const watchdog = pingsWanted ? setInterval(() => send(['WATCHDOG=1']), watchdogUsec / 2000) : undefined
  watchdog?.unref()
  if (watchdog) {
    send(['WATCHDOG=1'])
    // A new master this one starts by USR2 finds its parent named here.
    env.WATCHDOG_PID = String(process.pid)
  }

  // A new master is not the service until it has named itself: before its
  // first READY=1 it says nothing, so one that fails to boot cannot tell
  // systemd the service is stopping (STOPPING=1 from any process of the
  // unit counts, with NotifyAccess=all) while the old master serves on.
  const mayTalk = () => !tookOver || mainPidSent

  return {
    ready(status) {
      const mainPid = tookOver && !mainPidSent ? [`MAINPID=${process.pid}`] : []
      mainPidSent = true
      send([...mainPid, 'READY=1', `STATUS=${status}`])
    },
    reloading(status) {
      // CLOCK_MONOTONIC, which libuv's hrtime reads: systemd compares it with its own.
      if (mayTalk()) send(['RELOADING=1', `MONOTONIC_USEC=${process.hrtime.bigint() / 1000n}`, `STATUS=${status}`])
    },
    stopping(status) {
      if (mayTalk()) send(['STOPPING=1', `STATUS=${status}`])
    },
    status(status) {
      if (mayTalk()) send([`STATUS=${status}`])
    },
    async close() {
      clearInterval(watchdog)
      await sending
    },
  }
}

type Phase = 'booting' | 'serving' | 'idle' | 'reloading' | 'stopping' | 'handing-over'

/**
 * Follows the chart's steps (src/master/parts/chart.ts) and tells systemd
 * what changed, from the chart's commands and tags: READY=1 at its `ready`
 * (serving for the first time) and when a reload ends (`reloadCompleted`,
 * `reloadAbandoned`), RELOADING=1 at `reloadStarted` once serving, STOPPING=1
 * as it takes the `draining` tag, STATUS= when the line would read
 * differently. A master handing over to the new one (USR2) is not stopping
 * the service: it says so in STATUS= only.
 */
export function followMaster(notify: SystemdNotify): (step: Pick<ChartStep, 'after' | 'commands'>) => void {
  let phase: Phase = 'booting'
  let line = ''
  return ({ after, commands }) => {
    const { context } = after
    const was = phase
    let say: 'ready' | 'reloading' | undefined
    for (const command of commands) {
      if (command.type === 'ready') say = 'ready'
      else if (command.type === 'reloadStarted' && (was === 'serving' || was === 'idle')) say = 'reloading'
      else if ((command.type === 'reloadCompleted' || command.type === 'reloadAbandoned') && was === 'reloading')
        say = 'ready'
    }
    phase = after.draining
      ? context.childMaster === 'ready'
        ? 'handing-over'
        : 'stopping'
      : say === 'reloading' || (was === 'reloading' && say === undefined)
        ? 'reloading'
        : was === 'booting' && say !== 'ready'
          ? 'booting'
          : after.ready
            ? 'serving'
            : 'idle'
    const serving = context.workers.filter((w) => w.status === 'running' && w.role === 'serving').length
    const status = statusLine(phase, serving, context.generation, context.workers.length)
    if (status === line && phase === was) return
    line = status
    if (phase === 'stopping' && was !== 'stopping') notify.stopping(status)
    else if (say === 'ready' && phase !== 'stopping' && phase !== 'handing-over') notify.ready(status)
    else if (say === 'reloading') notify.reloading(status)
    else notify.status(status)
  }
}

const workers = (n: number) => `${n} worker${n === 1 ? '' : 's'}`

/** The STATUS= line `systemctl status` shows, e.g. "4 workers serving, generation 3". */
function statusLine(phase: Phase, serving: number, generation: number, alive: number): string {
  switch (phase) {
    case 'booting':
      return `booting: ${workers(serving)} serving, generation ${generation}`
    case 'serving':
      return `${workers(serving)} serving, generation ${generation}`
    case 'idle':
      return `workers stopped (WINCH), generation ${generation}; HUP starts them again`
    case 'reloading':
      return `reloading: generation ${generation} starting, ${workers(serving)} serving`
    case 'stopping':
      return `stopping: ${workers(alive)} finishing`
    case 'handing-over':
      return `handing over to the new master: ${workers(alive)} finishing`
  }
}
