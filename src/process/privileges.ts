// -u/--user, -g/--group, --initgroups: the identity workers run under.
//
// The master stays as it was started (root, typically, so it can bind port
// 80 and signal its workers); each worker is started under the configured
// user and group once the master has bound the listeners. Two ways, because
// spawn() cannot set supplementary groups:
//
// - without --initgroups: spawn({ uid, gid }). libuv calls setgroups(0) then
//   setgid then setuid in the child before exec, so the worker never runs a
//   line of JavaScript as root and has no supplementary groups.
// - with --initgroups: spawn({ gid }) (groups cleared, gid set, still uid 0);
//   the worker's first act, before it loads the app, is
//   process.initgroups(user, gid) then process.setuid(uid)
//   (finishPrivilegeDrop), so the app runs with the user's groups.
//
// Names are looked up in /etc/passwd and /etc/group (numeric ids need no
// entry); this is what Node can read without libc's getpwnam.
import { chownSync, readFileSync, statSync } from 'node:fs'

const PASSWD = '/etc/passwd'
const GROUP = '/etc/group'

interface UserEntry {
  readonly name: string
  readonly uid: number
  readonly gid: number
}

interface GroupEntry {
  readonly name: string
  readonly gid: number
}

const ID = /^\d+$/
/** The largest id: (uid_t)-1 means "unchanged" to setuid(2). */
const MAX_ID = 0xfffffffe

function records(path: string): string[][] {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch {
    return []
  }
  return text
    .split('\n')
    .filter((line) => line !== '' && !line.startsWith('#'))
    .map((line) => line.split(':'))
}

function users(): UserEntry[] {
  return records(PASSWD).map(([name = '', , uid = '', gid = '']) => ({ name, uid: Number(uid), gid: Number(gid) }))
}

function groups(): GroupEntry[] {
  return records(GROUP).map(([name = '', , gid = '']) => ({ name, gid: Number(gid) }))
}

const isId = (v: string | number): boolean =>
  typeof v === 'number' ? Number.isInteger(v) && v >= 0 && v <= MAX_ID : ID.test(v) && Number(v) <= MAX_ID

/** A user by name, or by uid (then possibly without an entry: undefined). */
function findUser(v: string | number): UserEntry | undefined {
  const all = users()
  return isId(v) ? all.find((u) => u.uid === Number(v)) : all.find((u) => u.name === v)
}

function findGroup(v: string | number): GroupEntry | undefined {
  const all = groups()
  return isId(v) ? all.find((g) => g.gid === Number(v)) : all.find((g) => g.name === v)
}

/** Why a --user value names no user, for the settings schema; undefined when it is fine. */
export function userProblem(v: string | number): string | undefined {
  if (isId(v)) return undefined
  if (typeof v === 'number' || v === '') return `expected a user name or a uid, got ${JSON.stringify(v)}`
  return findUser(v) ? undefined : `no such user ${JSON.stringify(v)} (not in ${PASSWD})`
}

export function groupProblem(v: string | number): string | undefined {
  if (isId(v)) return undefined
  if (typeof v === 'number' || v === '') return `expected a group name or a gid, got ${JSON.stringify(v)}`
  return findGroup(v) ? undefined : `no such group ${JSON.stringify(v)} (not in ${GROUP})`
}

/** Who workers run as; an empty object when they run as the master does. */
interface Credentials {
  readonly uid?: number
  readonly gid?: number
  /** With --initgroups: the user whose groups the worker takes (initgroups(3)). */
  readonly initgroupsUser?: string
}

export interface PrivilegeSettings {
  readonly user?: string | number | undefined
  readonly group?: string | number | undefined
  readonly initgroups?: boolean | undefined
}

export type CredentialsResult =
  | { readonly ok: true; readonly credentials: Credentials }
  | { readonly ok: false; readonly errors: string[] }

/**
 * Resolves -u/-g/--initgroups to ids and checks this process can switch to
 * them. The group defaults to the user's primary group (gunicorn keeps the
 * master's, which is root's group when the master is root).
 */
export function workerCredentials(
  s: PrivilegeSettings,
  self: { euid: number; egid: number } = { euid: process.geteuid?.() ?? 0, egid: process.getegid?.() ?? 0 },
): CredentialsResult {
  const errors: string[] = []
  const entry = s.user === undefined ? undefined : findUser(s.user)
  const uid = s.user === undefined ? undefined : (entry?.uid ?? Number(s.user))
  let gid: number | undefined
  if (s.group !== undefined) gid = findGroup(s.group)?.gid ?? Number(s.group)
  else if (s.user !== undefined) {
    gid = entry?.gid
    if (gid === undefined)
      errors.push(`-u/--user: uid ${uid} has no entry in ${PASSWD}, so no primary group: give -g/--group too`)
  }
  let initgroupsUser: string | undefined
  if (s.initgroups) {
    if (s.user === undefined) errors.push('--initgroups: needs -u/--user (whose groups the workers take)')
    else if (entry === undefined)
      errors.push(`--initgroups: uid ${uid} has no user name in ${PASSWD} to look its groups up by`)
    else initgroupsUser = entry.name
  }
  if (self.euid !== 0) {
    const who = `corral runs as uid ${self.euid}, not root`
    if (uid !== undefined && uid !== self.euid)
      errors.push(`-u/--user: ${who}: it cannot start workers as ${describeUser(s.user, uid)}`)
    if (gid !== undefined && gid !== self.egid)
      errors.push(`-g/--group: ${who}: it cannot start workers in group ${gid}`)
    if (initgroupsUser !== undefined) errors.push(`--initgroups: ${who}: it cannot set supplementary groups`)
  }
  if (errors.length > 0) return { ok: false, errors }
  return { ok: true, credentials: { uid, gid, initgroupsUser } }
}

const describeUser = (v: string | number | undefined, uid: number) =>
  String(v) === String(uid) ? `uid ${uid}` : `${v} (uid ${uid})`

/**
 * The uid/gid options for a worker's spawn(). With --initgroups only the gid:
 * the worker must still be root to set its groups (finishPrivilegeDrop).
 */
function spawnCredentials(c: Credentials): { uid?: number; gid?: number } {
  const out: { uid?: number; gid?: number } = {}
  if (c.gid !== undefined) out.gid = c.gid
  if (c.uid !== undefined && c.initgroupsUser === undefined) out.uid = c.uid
  return out
}

/**
 * In the worker, before the app is loaded: with --initgroups, take the
 * user's supplementary groups, then become the user. Returns why it could
 * not, or undefined.
 */
export function finishPrivilegeDrop(s: PrivilegeSettings): string | undefined {
  if (!s.initgroups || s.user === undefined) return undefined
  const r = workerCredentials(s)
  if (!r.ok) return r.errors.join('; ')
  const { uid, gid, initgroupsUser } = r.credentials
  if (uid === undefined || gid === undefined || initgroupsUser === undefined) return undefined
  try {
    const { initgroups } = process as unknown as { initgroups(user: string, extraGroup: number): void }
    initgroups(initgroupsUser, gid)
    process.setgid!(gid)
    process.setuid!(uid)
  } catch (err) {
    return `could not switch to user ${initgroupsUser} (uid ${uid}, gid ${gid}): ${err instanceof Error ? err.message : String(err)}`
  }
  return undefined
}

/**
 * The spawn() identity of every worker, resolved once when the pool is made
 * (the CLI has checked the settings; -u/-g are applied at start only).
 */
export function workerSpawnIdentity(s: PrivilegeSettings): { uid?: number; gid?: number } {
  const r = workerCredentials(s)
  if (!r.ok) throw new Error(r.errors.join('; '))
  return spawnCredentials(r.credentials)
}

/**
 * As gunicorn does: a log file the workers open themselves (the access log,
 * created by the master) is given to the worker user and group, so that
 * workers can open it, and open it again on USR1. Only a regular file: never
 * /dev/null or a pipe. Failures are left to the worker to report.
 */
export function giveLogFilesToWorkers(s: PrivilegeSettings & { readonly accessLogfile?: string | undefined }): void {
  if ((s.user === undefined && s.group === undefined) || s.accessLogfile === undefined || s.accessLogfile === '-')
    return
  const r = workerCredentials(s)
  if (!r.ok) return
  try {
    if (statSync(s.accessLogfile).isFile()) chownSync(s.accessLogfile, r.credentials.uid ?? -1, r.credentials.gid ?? -1)
  } catch {
    // the worker says why it cannot open it
  }
}
