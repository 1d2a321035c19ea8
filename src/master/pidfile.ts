// The master's pidfile through an upgrade. A master writes it once it is
// serving; USR2 moves it aside to PIDFILE.2 so the new master can write
// PIDFILE; a rollback moves it back. A master removes only a file that still
// holds its own pid, so two masters never delete each other's.
import { readFileSync, renameSync, statSync, unlinkSync, writeFileSync } from 'node:fs'
import { dirname } from 'node:path'

export interface Pidfile {
  /** Writes PIDFILE (atomically: readers never see it empty). */
  write(): void
  /** USR2: PIDFILE becomes PIDFILE.2. */
  moveAside(): void
  /** Rollback: PIDFILE.2 becomes PIDFILE again. */
  restore(): void
  /** At exit: removes whichever of the two holds this pid. */
  remove(): void
}

export const asidePath = (path: string) => `${path}.2`

export function createPidfile(path: string | undefined, pid = process.pid): Pidfile {
  if (path === undefined) return { write() {}, moveAside() {}, restore() {}, remove() {} }
  let current: string | undefined
  const holdsOurs = (p: string) => {
    try {
      return readFileSync(p, 'utf8').trim() === String(pid)
    } catch {
      return false
    }
  }
  const move = (from: string, to: string) => {
    if (current !== from || !holdsOurs(from)) return
    renameSync(from, to)
    current = to
  }
  return {
    write() {
      const tmp = `${path}.${pid}.tmp`
      writeFileSync(tmp, `${pid}\n`)
      try {
        renameSync(tmp, path)
      } catch (err) {
        // No stray temp file beside a pidfile that could not be written.
        unlinkSync(tmp)
        throw err
      }
      current = path
    },
    moveAside: () => move(path, asidePath(path)),
    restore: () => move(asidePath(path), path),
    remove() {
      if (current === undefined || !holdsOurs(current)) return
      try {
        unlinkSync(current)
      } catch {
        // gone already
      }
      current = undefined
    },
  }
}

/** The pid a pidfile names, if it names a live process. */
export function readPidfile(path: string): number | undefined {
  try {
    const pid = Number(readFileSync(path, 'utf8').trim())
    if (!Number.isInteger(pid) || pid <= 0) return undefined
    process.kill(pid, 0)
    return pid
  } catch {
    return undefined
  }
}

/** What checkPidfile found: a reason not to start, or a stale file it removed. */
export type PidfileCheck = { problem: string } | { stale: number | string } | undefined

/**
 * Before anything is bound: the pidfile's directory exists and the path is
 * not a directory, and no live master holds it ("Already running on PID N",
 * and the file is left alone). A file naming a dead process, or empty, is
 * stale: it is removed, and the caller says so; one holding anything else is
 * refused and left alone. The parent of a master
 * started by USR2 has moved its pidfile aside already; during a rollback it
 * may name that parent, which is not a second master.
 */
export function checkPidfile(path: string, parent = process.ppid): PidfileCheck {
  const dir = dirname(path)
  try {
    if (!statSync(dir).isDirectory()) return { problem: `-p/--pid ${path}: ${dir} is not a directory` }
  } catch {
    return { problem: `-p/--pid ${path}: the directory ${dir} does not exist` }
  }
  let text: string
  try {
    if (statSync(path).isDirectory()) return { problem: `-p/--pid ${path} is a directory; name a file in it` }
    text = readFileSync(path, 'utf8').trim()
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'ENOENT') return undefined
    return { problem: `-p/--pid ${path}: cannot read it (${code ?? String(err)})` }
  }
  // Anything but a pid (say `-p app.js` by mistake) is not ours to replace.
  if (text !== '' && !/^\d+$/.test(text)) {
    return { problem: `-p/--pid ${path} holds something other than a pid; not replacing it` }
  }
  const pid = Number(text)
  if (pid > 0 && pid !== parent && isRunning(pid)) return { problem: `Already running on PID ${pid} (pidfile ${path})` }
  unlinkSync(path)
  return { stale: text === '' ? 'no pid' : pid }
}

/** Alive, whoever owns it (EPERM: another user's live process). */
function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}
