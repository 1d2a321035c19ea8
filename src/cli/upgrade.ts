// The USR2 procedure from outside (spec/upgrade.md), once, for both ways in:
// `corral upgrade --pid PIDFILE` watches the pidfiles and sends signals,
// `corral ctl upgrade` watches the control sockets and sends commands. Both
// places work the same way: the old master moves its file aside (PATH.2)
// when it starts a new master, the new one takes PATH once it is ready, and
// a failed new master leaves the old one back on PATH. So the procedure is
// written against where the masters are seen (Masters), not how.
import { readdirSync, readFileSync } from 'node:fs'

/** A master as seen at one of the two places. */
interface SeenMaster {
  readonly pid: number
  /** All its workers serve. A pidfile is written only then, so it says so. */
  readonly ready: boolean
  /** Stopping for good already (--upgrade auto stops the old master by itself). */
  readonly draining: boolean
}

export interface Masters {
  /** The master at the usual place (PIDFILE, PATH). */
  atPath(): Promise<SeenMaster | undefined>
  /** The master at the aside place (PIDFILE.2, PATH.2): the old one, during a hand-over. */
  aside(): Promise<SeenMaster | undefined>
  /** USR2 to `old`; a sentence when it cannot be sent. */
  upgrade(old: number): Promise<string | undefined>
  /** `pid`, gracefully (QUIT, or `ctl shutdown` at `where`). */
  stop(pid: number, where: 'path' | 'aside'): Promise<void>
}

export interface UpgradeOptions {
  /** How long the new master may take to be ready; past it, it is stopped and the old one keeps serving. */
  readonly timeoutMs: number
  /** A line of progress for people. */
  readonly say: (line: string) => void
}

export type UpgradeOutcome =
  | { readonly ok: true; readonly old: number; readonly fresh: number }
  | { readonly ok: false; readonly reason: string }

/** How long a master that accepted USR2 may take to move its file aside; it does so at once. */
const ASIDE_WAIT_MS = 10_000
/** How long the old master may take to come back once a too-slow new master is stopped (gracefully: its ready workers may be serving). */
const ROLLBACK_WAIT_MS = 60_000
/** Beyond the upgrade's timeout, how long the old master may take to stop once the new one serves. */
const OLD_MASTER_STOP_MS = 60_000
const POLL_MS = 100

/**
 * USR2 → the new master ready → the old one stopped gracefully, watched at
 * both places. A new master that fails, or is not ready within the timeout
 * (then it is stopped), leaves the old one serving: nothing changed.
 */
export async function upgradeMaster(masters: Masters, { timeoutMs, say }: UpgradeOptions): Promise<UpgradeOutcome> {
  const fail = (reason: string): UpgradeOutcome => ({ ok: false, reason })
  const first = await masters.atPath()
  if (first === undefined) return fail('no running master to upgrade')
  const old = first.pid
  const refused = await masters.upgrade(old)
  if (refused !== undefined) return fail(refused)
  say(`sent USR2 to master ${old}`)
  if (!(await until(async () => (await masters.aside())?.pid === old, ASIDE_WAIT_MS)))
    return fail(
      `master ${old} did not start a new master (PID 1, an upgrade already in flight, or its preExec hook failed?); see its log`,
    )

  const deadline = Date.now() + timeoutMs
  let fresh: number | undefined
  const outcome = await until(async () => {
    const now = await masters.atPath()
    if (now?.pid === old) return 'rolled back'
    if (now?.ready) {
      fresh = now.pid
      return 'ready'
    }
    if ((await masters.aside())?.pid !== old && (await masters.atPath())?.pid !== old) return 'old master gone'
    return undefined
  }, timeoutMs)
  if (outcome === 'rolled back')
    return fail(`the new master failed before it was ready; master ${old} keeps serving (see its log)`)
  if (outcome === 'old master gone') return fail(`master ${old} exited during the upgrade; see its log`)
  if (outcome === undefined || fresh === undefined) {
    // Too slow: end the new master, and the old one rolls back by itself.
    for (const pid of newMasters(old)) await masters.stop(pid, 'path')
    const back = await until(async () => (await masters.atPath())?.pid === old, ROLLBACK_WAIT_MS)
    return fail(
      back
        ? `the new master was not ready after ${timeoutMs / 1000} s; rolled back, master ${old} keeps serving`
        : `the new master was not ready after ${timeoutMs / 1000} s and was stopped; master ${old} has not taken its place back yet (see its log)`,
    )
  }

  say(`new master ${fresh} is serving; stopping master ${old} gracefully`)
  if (!(await masters.aside())?.draining) await masters.stop(old, 'aside')
  const gone = await until(
    async () => (await masters.aside())?.pid !== old,
    Math.max(deadline - Date.now(), 0) + OLD_MASTER_STOP_MS,
  )
  if (!gone) return fail(`master ${old} has not exited yet; the new master ${fresh} serves`)
  say(`done: master ${fresh} serves`)
  return { ok: true, old, fresh }
}

async function until<T>(probe: () => Promise<T | undefined | false>, timeoutMs: number): Promise<T | undefined> {
  const end = Date.now() + timeoutMs
  for (;;) {
    const v = await probe()
    if (v !== undefined && v !== false) return v
    if (Date.now() >= end) return undefined
    await new Promise((r) => setTimeout(r, POLL_MS))
  }
}

/** The fields of /proc/PID/stat after the command name: state, ppid, … */
function stat(pid: number): string[] | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return text.slice(text.lastIndexOf(')') + 2).split(' ')
  } catch {
    return undefined
  }
}

/** Alive and not a zombie. */
export const alive = (pid: number): boolean => {
  const s = stat(pid)
  return s !== undefined && s[0] !== 'Z'
}

/**
 * The masters a master started on USR2: its children titled as masters. A
 * new master that is not ready yet has taken neither place, so this is how
 * a too-slow one is found.
 */
function newMasters(parent: number): number[] {
  return readdirSync('/proc')
    .filter((n) => /^\d+$/.test(n) && stat(Number(n))?.[1] === String(parent))
    .map(Number)
    .filter((pid) => {
      try {
        return readFileSync(`/proc/${pid}/cmdline`, 'utf8').startsWith('corral: master')
      } catch {
        return false
      }
    })
}
