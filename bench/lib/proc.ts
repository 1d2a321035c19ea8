// Process plumbing for the benchmark: spawning with a tracked registry,
// /proc readers, waits with timeouts, and cleanup that kills exactly the
// processes this run started (and their descendants), by pid.
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'
import { setTimeout as sleep } from 'node:timers/promises'

export { sleep }

export const now = (): number => performance.now()

/**
 * Every pid this run started directly or discovered as a descendant of one,
 * with its start time (field 22 of /proc/PID/stat), so that a pid reused by
 * some unrelated process later is never signalled.
 */
const tracked = new Map<number, string>()

export function track(pid: number | undefined): void {
  if (pid === undefined || pid <= 0 || tracked.has(pid)) return
  const st = readStat(pid)
  if (st) tracked.set(pid, st.starttime)
}

/** Still the same process we tracked, and running. */
const sameAndRunning = (pid: number): boolean => {
  const st = readStat(pid)
  return st !== undefined && st.starttime === tracked.get(pid) && st.state !== 'Z' && st.state !== 'X'
}

export interface Proc {
  child: ChildProcess
  pid: number
  /** All stderr + stdout text so far. */
  output(): string
  /** Resolves with the time (performance.now()) a line matching `re` arrives after `since`. */
  waitForLine(re: RegExp, timeoutMs: number, since?: number): Promise<number>
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>
  alive(): boolean
}

interface Line {
  at: number
  text: string
}

export function start(cmd: string, args: string[], opts: SpawnOptions = {}): Proc {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...opts })
  if (child.pid === undefined) throw new Error(`could not spawn ${cmd}`)
  const pid = child.pid
  track(pid)
  const lines: Line[] = []
  let text = ''
  const waiters = new Set<{ re: RegExp; since: number; resolve: (t: number) => void }>()
  let partial = ''
  const onData = (buf: Buffer) => {
    const at = now()
    const s = buf.toString()
    text += s
    const parts = (partial + s).split('\n')
    partial = parts.pop() ?? ''
    for (const p of parts) {
      lines.push({ at, text: p })
      for (const w of waiters)
        if (at >= w.since && w.re.test(p)) {
          waiters.delete(w)
          w.resolve(at)
        }
    }
  }
  child.stdout?.on('data', onData)
  child.stderr?.on('data', onData)
  let isAlive = true
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>((resolve) => {
    child.on('exit', (code, signal) => {
      isAlive = false
      resolve({ code, signal, at: now() })
    })
    child.on('error', () => {
      isAlive = false
      resolve({ code: null, signal: null, at: now() })
    })
  })
  return {
    child,
    pid,
    output: () => text,
    alive: () => isAlive,
    exited,
    waitForLine(re, timeoutMs, since = 0) {
      const seen = lines.find((l) => l.at >= since && re.test(l.text))
      if (seen) return Promise.resolve(seen.at)
      return new Promise((resolve, reject) => {
        const w = {
          re,
          since,
          resolve: (t: number) => {
            clearTimeout(timer)
            resolve(t)
          },
        }
        const timer = setTimeout(() => {
          waiters.delete(w)
          reject(
            new Error(
              `timed out after ${timeoutMs} ms waiting for ${re} from pid ${pid} (${cmd} ${args.join(' ')}); output so far:\n${tail(text)}`,
            ),
          )
        }, timeoutMs)
        waiters.add(w)
        void exited.then(({ code, signal }) => {
          if (!waiters.has(w)) return
          waiters.delete(w)
          clearTimeout(timer)
          reject(
            new Error(
              `pid ${pid} (${cmd} ${args.join(' ')}) exited (code ${code}, signal ${signal}) while waiting for ${re}; output:\n${tail(text)}`,
            ),
          )
        })
      })
    },
  }
}

const tail = (s: string, n = 2000): string => (s.length > n ? `…${s.slice(-n)}` : s)

/** Run a command to completion (with a timeout) and return its output. */
export async function run(
  cmd: string,
  args: string[],
  opts: SpawnOptions & { timeoutMs: number },
): Promise<{ code: number | null; out: string }> {
  const { timeoutMs, ...rest } = opts
  const p = start(cmd, args, rest)
  const timer = setTimeout(() => kill(p.pid, 'SIGKILL'), timeoutMs)
  const { code, signal } = await p.exited
  clearTimeout(timer)
  if (signal === 'SIGKILL')
    throw new Error(`${cmd} ${args.join(' ')} timed out after ${timeoutMs} ms:\n${tail(p.output())}`)
  return { code, out: p.output() }
}

export function kill(pid: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(pid, signal)
    return true
  } catch {
    return false
  }
}

interface Stat {
  pid: number
  ppid: number
  state: string
  starttime: string
}

function readStat(pid: number): Stat | undefined {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // comm may contain spaces and parentheses: fields start after the last ')'.
    const rest = s.slice(s.lastIndexOf(')') + 2).split(' ')
    return { pid, state: rest[0] ?? '?', ppid: Number(rest[1]), starttime: rest[19] ?? '' }
  } catch {
    return undefined
  }
}

/** A pid counts as running if it exists and is not a zombie. */
export function running(pid: number): boolean {
  const st = readStat(pid)
  return st !== undefined && st.state !== 'Z' && st.state !== 'X'
}

function allStats(): Stat[] {
  const out: Stat[] = []
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue
    const st = readStat(Number(name))
    if (st) out.push(st)
  }
  return out
}

/** Live (non-zombie) direct children of `pid`. */
export function children(pid: number): number[] {
  return allStats()
    .filter((s) => s.ppid === pid && s.state !== 'Z')
    .map((s) => s.pid)
}

/** Live descendants of `pid`, depth first. */
export function descendants(pid: number): number[] {
  const stats = allStats()
  const out: number[] = []
  const walk = (p: number) => {
    for (const s of stats)
      if (s.ppid === p && s.state !== 'Z') {
        out.push(s.pid)
        walk(s.pid)
      }
  }
  walk(pid)
  return out
}

/** Remember every current descendant of the tracked pids, so cleanup can find orphans later. */
export function trackDescendants(pid: number): number[] {
  const d = descendants(pid)
  for (const p of d) track(p)
  return d
}

export function rssKiB(pid: number): number {
  const s = readFileSync(`/proc/${pid}/status`, 'utf8')
  const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(s)
  if (!m) throw new Error(`no VmRSS for pid ${pid}`)
  return Number(m[1])
}

export function cpusAllowed(pid: number): string {
  try {
    return /^Cpus_allowed_list:\s+(\S+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? '?'
  } catch {
    return '?'
  }
}

/** Poll `cond` every `everyMs` until true; returns the time it became true. */
export async function until(cond: () => boolean, timeoutMs: number, what: string, everyMs = 2): Promise<number> {
  const deadline = now() + timeoutMs
  for (;;) {
    if (cond()) return now()
    if (now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await sleep(everyMs)
  }
}

/**
 * Stop a process we started: `signal`, then SIGKILL after `graceMs`, then
 * SIGKILL any of its descendants still running. Resolves once all are gone.
 */
export async function stop(p: Proc, signal: NodeJS.Signals = 'SIGTERM', graceMs = 5000): Promise<void> {
  const family = [p.pid, ...trackDescendants(p.pid)]
  if (p.alive()) {
    kill(p.pid, signal)
    const timer = setTimeout(() => kill(p.pid, 'SIGKILL'), graceMs)
    await p.exited
    clearTimeout(timer)
  }
  for (const pid of family) if (sameAndRunning(pid)) kill(pid, 'SIGKILL')
  await until(() => family.every((pid) => !sameAndRunning(pid)), 5000, `pids ${family.join(', ')} to exit`).catch(
    () => {},
  )
}

/** Last resort, from `finally` and signal handlers: SIGKILL everything tracked and still running. */
export function killAllTracked(): number[] {
  // First collect descendants, so a killed parent does not orphan them out of sight.
  for (const pid of [...tracked.keys()]) if (sameAndRunning(pid)) trackDescendants(pid)
  const killed: number[] = []
  for (const pid of tracked.keys())
    if (pid !== process.pid && sameAndRunning(pid) && kill(pid, 'SIGKILL')) killed.push(pid)
  return killed
}

export function trackedStillRunning(): number[] {
  return [...tracked.keys()].filter((pid) => pid !== process.pid && sameAndRunning(pid))
}

function cpuTimes(): { idle: number; total: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? ''
  const f = line.trim().split(/\s+/).slice(1).map(Number)
  const idle = (f[3] ?? 0) + (f[4] ?? 0)
  return { idle, total: f.reduce((a, b) => a + b, 0) }
}

/** Fraction of all CPUs' time spent busy over the next `ms` (0..1). */
async function cpuBusy(ms: number): Promise<number> {
  const a = cpuTimes()
  await sleep(ms)
  const b = cpuTimes()
  const total = b.total - a.total
  return total > 0 ? 1 - (b.idle - a.idle) / total : 0
}

/**
 * Wait until the machine is quiet (busy below `threshold` over a 500 ms
 * window), for at most `timeoutMs`. Returns the last busy fraction seen,
 * so the caller can flag a measurement taken on a loaded machine.
 */
export async function waitQuiet(
  threshold: number,
  timeoutMs: number,
  onWait?: (busy: number) => void,
): Promise<number> {
  const deadline = now() + timeoutMs
  let warned = false
  for (;;) {
    const busy = await cpuBusy(500)
    if (busy < threshold || now() > deadline) return busy
    if (!warned) {
      onWait?.(busy)
      warned = true
    }
  }
}

const CLK_TCK = 100 // Linux USER_HZ; /proc/PID/stat times are in these units
const SLACK_TICKS = 2

/** user + nice + system jiffies of all CPUs (irq and softirq left out: under load they are mostly our own packets). */
function systemTaskTicks(): number {
  const f = (readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '').trim().split(/\s+/).slice(1).map(Number)
  return (f[0] ?? 0) + (f[1] ?? 0) + (f[2] ?? 0)
}

/** Tracked pids seen gone, so polling skips them. */
const gone = new Set<number>()

/** utime + stime of a tracked pid, if it is still that process. */
function ticksOf(pid: number): number | undefined {
  if (gone.has(pid)) return undefined
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const rest = s.slice(s.lastIndexOf(')') + 2).split(' ')
    if (pid !== process.pid && rest[19] !== tracked.get(pid)) {
      gone.add(pid)
      return undefined
    }
    return Number(rest[11]) + Number(rest[12])
  } catch {
    gone.add(pid)
    return undefined
  }
}

export interface ForeignCpu {
  /** Note the CPU time of our processes now (call it while some of them are about to exit). */
  sample(): void
  /** CPU used by processes this run did not start, in cores (1 = one CPU fully busy). */
  end(): number
}

/**
 * Measure the CPU used meanwhile by processes this run did not start: all
 * CPU time on the machine (/proc/stat) minus that of our own processes, so
 * short-lived processes (a test suite spawning node after node) are seen.
 * An own process that exits inside the window is counted up to its last
 * sample(); call sample() while processes of ours are exiting.
 */
export function foreignCpu(): ForeignCpu {
  const t0 = now()
  const sys0 = systemTaskTicks()
  const first = new Map<number, number>()
  const last = new Map<number, number>()
  const ours = () => [process.pid, ...[...tracked.keys()].filter((p) => p !== process.pid)]
  const sample = () => {
    for (const pid of ours()) {
      const t = ticksOf(pid)
      if (t === undefined) continue
      // Not running at the start (spawned meanwhile): all its time is within the window.
      if (!first.has(pid)) first.set(pid, 0)
      last.set(pid, t)
    }
  }
  // At the start every running process of ours counts from its current time.
  for (const pid of ours()) {
    const t = ticksOf(pid)
    if (t !== undefined) {
      first.set(pid, t)
      last.set(pid, t)
    }
  }
  return {
    sample,
    end() {
      for (const pid of [...tracked.keys()]) if (ticksOf(pid) !== undefined) trackDescendants(pid)
      sample()
      const sys1 = systemTaskTicks()
      let ourTicks = 0
      for (const [pid, t] of last) ourTicks += t - (first.get(pid) ?? 0)
      const seconds = (now() - t0) / 1000
      // The machine's total is sampled per tick, a process's time is exact:
      // allow a couple of ticks of disagreement before calling it someone else's.
      const foreignTicks = Math.max(0, sys1 - sys0 - ourTicks - SLACK_TICKS)
      return seconds > 0 ? foreignTicks / CLK_TCK / seconds : 0
    },
  }
}

/** How long ago `pid` started, in ms (from /proc/PID/stat starttime and /proc/uptime). */
export function ageMs(pid: number): number {
  const st = readStat(pid)
  if (!st) return 0
  const uptime = Number(readFileSync('/proc/uptime', 'utf8').split(' ')[0])
  return uptime * 1000 - (Number(st.starttime) / CLK_TCK) * 1000
}
