// Starts real corral masters for end-to-end tests and makes sure nothing they
// started outlives the test: every master is killed by pid in teardown, with
// its workers (found through /proc), even when the test failed or timed out.
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

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
  /** Resolves with the first log line matching, after `from` characters. */
  waitForLog(pattern: RegExp, options?: { timeoutMs?: number; from?: number }): Promise<RegExpMatchArray>
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
  /** The control socket given on its command line by startCorral, if it gave one. */
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
  // each gets a control socket of its own, unless the test chose.
  let controlSocket: string | undefined
  if (options.cwd === undefined && !args.some((a) => /^--(no-)?control-socket/.test(a))) {
    const dir = mkdtempSync(join(tmpdir(), 'corral-ctl-'))
    socketDirs.add(dir)
    controlSocket = join(dir, 'corral.ctl')
    args = ['--control-socket', controlSocket, ...args]
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
  const corral: Corral = {
    child,
    pid: child.pid!,
    log: () => text,
    exited,
    signal: (name) => void child.kill(name),
    workers: () => childrenOf(child.pid!),
    ended: () =>
      Promise.all(
        [child.stdout!, child.stderr!].map((s) =>
          s.closed ? undefined : new Promise<void>((resolve) => s.once('close', () => resolve())),
        ),
      ).then(() => undefined),
    controlSocket,
    waitForLog(pattern, { timeoutMs = 10_000, from = 0 } = {}) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const m = text.slice(from).match(pattern)
          if (m) {
            done()
            resolve(m)
          } else if (child.exitCode !== null || child.signalCode !== null) {
            done()
            reject(new Error(`corral exited before logging ${pattern}; log:\n${text}`))
          }
        }
        const timer = setTimeout(() => {
          done()
          reject(new Error(`timed out waiting for ${pattern}; log:\n${text}`))
        }, timeoutMs)
        const done = () => {
          clearTimeout(timer)
          waiters.delete(check)
        }
        waiters.add(check)
        check()
      })
    },
  }
  started.add(corral)
  options.signal?.addEventListener('abort', () => kill(corral))
  return corral
}

/** Kills a master and every process below it, by pid. */
function kill(corral: Corral): void {
  killTree(corral.pid)
  started.delete(corral)
}

/** For afterEach: kill every master the test started, with its workers. */
export async function killAll(): Promise<void> {
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

/** Polls `probe` (which may be async) until it gives something other than undefined or false. */
export async function waitFor<T>(
  probe: () => T | undefined | false | Promise<T | undefined | false>,
  { timeoutMs = 10_000, everyMs = 25, what = 'condition' } = {},
): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const v = await probe()
    if (v !== undefined && v !== false) return v
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, everyMs))
  }
}
