// The master's pidfile through an upgrade. A master writes it once it is
// serving; USR2 moves it aside to PIDFILE.2 so the new master can write
// PIDFILE; a rollback moves it back. A master removes only a file that still
// holds its own pid, so two masters never delete each other's.
import { readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs'

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
      renameSync(tmp, path)
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
