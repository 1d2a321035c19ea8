// Starts real corral masters for end-to-end tests and makes sure nothing they
// started outlives the test: every master is killed by pid in teardown, with
// its workers (found through /proc), even when the test failed or timed out.
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { MachineSummary } from '../../src/protocol/control.ts'
import { answer } from './control.ts'

export const ROOT = fileURLToPath(new URL('../..', import.meta.url))
export const BIN = `${ROOT}bin/corral.js`
export const fixture = (name: string) => `${ROOT}test/fixtures/${name}`

const started = new Set<Corral>()
/** Processes a test learned of (a master started by USR2, a daemon): killed in teardown too. */
const tracked = new Set<number>()

/** Kill this pid and everything below it when the test ends. */
export function track(pid: number): void {
  tracked.add(pid)
}

export interface Corral {
  readonly child: ChildProcess
  readonly pid: number
  /** Everything the master and its workers wrote to stderr so far. */
  log(): string
  /**
   * Resolves with the first log line matching, after `from` characters. For tests about what is logged:
   * a test that needs a state waits on it (untilReady, untilReloaded). No clock of its own unless
   * `timeoutMs` says: it ends when the line comes, the master exits, or the start signal aborts.
   */
  waitForLog(pattern: RegExp, options?: { timeoutMs?: number; from?: number }): Promise<RegExpMatchArray>
  /**
   * The master's `show machine` once its workers serve (the chart's `ready` tag, which the
   * "Ready: N worker(s)" line announces), and, given `workers`, once it holds that many (booting, running
   * or stopping: `show machine`'s count).
   */
  untilReady(options?: { workers?: number }): Promise<MachineSummary>
  /** The master's `show machine` once generation `generation` (or a later one) serves and no reload is under way. */
  untilReloaded(generation: number): Promise<MachineSummary>
  /**
   * Sends a HUP once no reload is under way and waits until the generation it starts serves: the
   * machine then. A reload that is abandoned rejects, with the master's line saying why.
   */
  hup(): Promise<MachineSummary>
  /**
   * Asks the control socket `show machine` until `probe` accepts the answer. No clock of its own: it
   * ends when the probe accepts, the master exits (rejecting with its log) or the start signal aborts.
   */
  untilMachine<T>(what: string, probe: (machine: MachineSummary) => T | undefined | false): Promise<T>
  /** Resolves with the exit code (or signal name) once the master has exited. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
  /**
   * Resolves once the master's stdout and stderr have ended, so that log() holds all it wrote (data can
   * still be in the pipe at 'exit'). Not for a master that started another by USR2: it shares the pipes.
   */
  ended(): Promise<void>
  signal(name: NodeJS.Signals): void
  /** Live worker pids: the master's child processes, read from /proc. */
  workers(): number[]
  /** Where the master answers control requests: its --control-socket, or the default in its cwd; none with --no-control-socket. */
  readonly controlSocket: string | undefined
}

export interface StartOptions {
  env?: NodeJS.ProcessEnv
  cwd?: string
  signal?: AbortSignal
  /** Another Node binary (default: the one running the tests). */
  node?: string
  /** Another corral entry, e.g. an installed package's node_modules/corral/bin/corral.js. */
  bin?: string
}

/** Directories made for control sockets, removed in teardown. */
const socketDirs = new Set<string>()

export function startCorral(args: string[], options: StartOptions = {}): Corral {
  // Masters started in the repository share its directory, where the default
  // ./corral.ctl of one would be another's "live master already there":
  // each gets a control socket of its own, unless the test chose. A master
  // started elsewhere answers on its default, in that directory.
  let controlSocket = controlSocketGiven(args, options.cwd)
  if (controlSocket === undefined && !args.includes('--no-control-socket')) {
    if (options.cwd === undefined || resolve(options.cwd) === resolve(ROOT)) {
      const dir = mkdtempSync(join(tmpdir(), 'corral-ctl-'))
      socketDirs.add(dir)
      controlSocket = join(dir, 'corral.ctl')
      args = ['--control-socket', controlSocket, ...args]
    } else controlSocket = resolve(options.cwd, argValue(args, '--chdir') ?? '.', 'corral.ctl')
  }
  // Run by node directly, as a user's service manager would: npx adds ~0.5 s.
  // In a session of its own (detached), with no controlling terminal, as under
  // a service manager: the same whether the tests run in a terminal or in CI
  // (a master in a terminal's foreground ignores WINCH: spec/signals.md).
  const child = spawn(options.node ?? process.execPath, [options.bin ?? BIN, ...args], {
    detached: true,
    cwd: options.cwd ?? ROOT,
    env: { ...process.env, ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let text = ''
  const waiters = new Set<() => void>()
  const onData = (chunk: Buffer) => {
    text += chunk.toString()
    for (const w of waiters) w()
  }
  child.stderr!.on('data', onData)
  child.stdout!.on('data', onData)
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => {
      for (const w of waiters) w()
      resolve({ code, signal })
    }),
  )
  const hasExited = () => child.exitCode !== null || child.signalCode !== null
  const corral: Corral = {
    child,
    pid: child.pid!,
    log: () => text,
    exited,
    signal: (name) => void child.kill(name),
    workers: () => childrenOf(child.pid!).filter(isHttpWorker),
    ended: () =>
      Promise.all(
        [child.stdout!, child.stderr!].map((s) =>
          s.closed ? undefined : new Promise<void>((resolve) => s.once('close', () => resolve())),
        ),
      ).then(() => undefined),
    controlSocket,
    waitForLog(pattern, { timeoutMs, from = 0 } = {}) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const m = text.slice(from).match(pattern)
          if (m) {
            done()
            resolve(m)
          } else if (hasExited()) {
            done()
            reject(new Error(`corral exited before logging ${pattern}; log:\n${text}`))
          } else if (options.signal?.aborted) {
            done()
            reject(new Error(`the test ended while waiting for ${pattern}; log:\n${text}`))
          }
        }
        const timer =
          timeoutMs === undefined
            ? undefined
            : setTimeout(() => {
                done()
                reject(new Error(`timed out waiting for ${pattern}; log:\n${text}`))
              }, timeoutMs)
        const done = () => {
          clearTimeout(timer)
          waiters.delete(check)
          options.signal?.removeEventListener('abort', check)
        }
        waiters.add(check)
        options.signal?.addEventListener('abort', check)
        check()
      })
    },
    async untilMachine(what, probe) {
      const ended = testEnded.signal
      if (controlSocket === undefined) throw new Error(`waiting for ${what}: this master has no control socket`)
      for (;;) {
        if (hasExited()) throw new Error(`corral exited before ${what}; log:\n${text}`)
        if (options.signal?.aborted || ended.aborted)
          throw new Error(`the test ended while waiting for ${what}; log:\n${text}`)
        if (/Control socket: .*running without one/.test(text))
          throw new Error(`waiting for ${what}: this master runs without a control socket; log:\n${text}`)
        // A socket not there yet, or a master between answers, is asked again.
        const data = await answer(controlSocket, ['show', 'machine'], 'machine').catch(() => undefined)
        // Another master's answer (this one found the socket taken) says nothing of this one.
        const accepted = data === undefined || data.machine.pid !== child.pid ? undefined : probe(data.machine)
        if (accepted !== undefined && accepted !== false) return accepted
        await new Promise((r) => setTimeout(r, 50))
      }
    },
    untilReady({ workers } = {}) {
      return corral.untilMachine(
        workers === undefined ? 'its workers serve' : `${workers} workers serve`,
        (m) => m.ready && (workers === undefined || m.workers === workers) && m,
      )
    },
    async hup() {
      const { generation } = await corral.untilReloaded(0)
      const from = text.length
      child.kill('SIGHUP')
      return corral.untilMachine(`generation ${generation + 1} serves`, (m) => {
        // An abandoned reload goes back to the generation before: no state of it to wait for.
        const abandoned = text.slice(from).match(/Reload abandoned[^\n]*/)
        if (abandoned) throw new Error(`HUP: ${abandoned[0]}; log:\n${text}`)
        return m.state === 'active.running.steady' && m.generation > generation && m
      })
    },
    untilReloaded(generation) {
      return corral.untilMachine(
        `generation ${generation} serves`,
        (m) => m.state === 'active.running.steady' && m.generation >= generation && m,
      )
    },
  }
  started.add(corral)
  options.signal?.addEventListener('abort', () => kill(corral))
  return corral
}

/** The control socket `args` give, resolved against `cwd`. */
function controlSocketGiven(args: string[], cwd: string | undefined): string | undefined {
  const given = argValue(args, '--control-socket')
  return given === undefined ? undefined : resolve(cwd ?? ROOT, given)
}

/** The value of `--flag VALUE` or `--flag=VALUE` in `args`. */
function argValue(args: string[], flag: string): string | undefined {
  const i = args.findIndex((a) => a === flag || a.startsWith(`${flag}=`))
  if (i < 0) return undefined
  const arg = args[i]!
  return arg.includes('=') ? arg.slice(arg.indexOf('=') + 1) : args[i + 1]
}

/** Kills a master and every process below it, by pid. */
function kill(corral: Corral): void {
  killTree(corral.pid)
  started.delete(corral)
}

/** Aborted by killAll: the waits a test left running (it failed or timed out) end with it. */
let testEnded = new AbortController()

/** The pid a pidfile holds, or undefined while there is none. */
export function pidIn(path: string): number | undefined {
  try {
    return Number(readFileSync(path, 'utf8').trim())
  } catch {
    return undefined
  }
}

/** For afterEach: kill every master the test started, with its workers. */
export async function killAll(): Promise<void> {
  testEnded.abort()
  testEnded = new AbortController()
  const all = [...started]
  for (const c of all) kill(c)
  for (const pid of tracked) killTree(pid)
  tracked.clear()
  await Promise.all(all.map((c) => c.exited))
  for (const dir of socketDirs) rmSync(dir, { recursive: true, force: true })
  socketDirs.clear()
}

function killTree(pid: number): void {
  for (const p of [...descendantsOf(pid), pid]) {
    try {
      process.kill(p, 'SIGKILL')
    } catch {
      // already gone
    }
  }
}

function readStat(pid: number): { ppid: number; state: string } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // The command name may hold spaces and parentheses: parse after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return { state: fields[0]!, ppid: Number(fields[1]) }
  } catch {
    return undefined
  }
}

/** Children of pid that are alive (zombies excluded). */
export function childrenOf(pid: number): number[] {
  const out: number[] = []
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue
    const stat = readStat(Number(name))
    if (stat && stat.ppid === pid && stat.state !== 'Z') out.push(Number(name))
  }
  return out.sort((a, b) => a - b)
}

/**
 * An HTTP worker, by its title (src/master/worker-pool.ts): not the
 * master's other children, its listen helper (for a moment beside the first
 * worker's start) or its dirty workers.
 */
function isHttpWorker(pid: number): boolean {
  try {
    // Its title, an argument from the spawn on and the whole command line once the worker sets it.
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('corral: worker [')
  } catch {
    return false
  }
}

function descendantsOf(pid: number): number[] {
  const kids = childrenOf(pid)
  return [...kids, ...kids.flatMap(descendantsOf)]
}

export function isAlive(pid: number): boolean {
  const stat = readStat(pid)
  return stat !== undefined && stat.state !== 'Z'
}

/** A free loopback port (there is a small window before corral binds it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer()
    s.on('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number }
      s.close(() => resolve(port))
    })
  })
}

/**
 * Polls `probe` (which may be async) until it gives something other than undefined or false. No clock of
 * its own unless `timeoutMs` says: the test's timeout bounds it, and the test's teardown (killAll) ends it.
 */
export async function waitFor<T>(
  probe: () => T | undefined | false | Promise<T | undefined | false>,
  { timeoutMs, everyMs = 25, what = 'condition' }: { timeoutMs?: number; everyMs?: number; what?: string } = {},
): Promise<T> {
  const deadline = timeoutMs === undefined ? Number.POSITIVE_INFINITY : Date.now() + timeoutMs
  const ended = testEnded.signal
  for (;;) {
    const v = await probe()
    if (v !== undefined && v !== false) return v
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    if (ended.aborted) throw new Error(`the test ended while waiting for ${what}`)
    await new Promise((r) => setTimeout(r, everyMs))
  }
}
