// USR2's shell half: start a new master — the same argv and environment, so
// the code is read from disk again — as this master's child, handing it every
// listener as an inherited fd. The new master binds nothing; it tells its
// parent once its workers serve, then cuts the IPC tie so that it outlives it.
import { FIRST_LISTENER_FD } from '../protocol/master-worker.ts'
import { spawn, type ChildProcess } from 'node:child_process'
import { START_CWD } from '../process/process-settings.ts'
import type { MasterEvent } from '../../machines/master.ts'
import type { Listener } from '../net/listeners.ts'

/** Names the inherited listeners: JSON `[{ fd, address }]`. */
const LISTENERS_ENV = 'CORRAL_LISTENERS'
/** Set for a master whose parent waits for its readiness over IPC (USR2, -D). */
export const NOTIFY_ENV = 'CORRAL_NOTIFY_READY'

export interface InheritedListener {
  fd: number
  address: string
  /** A --reuse-port placeholder: the new master keeps it bound and its workers bind their own sockets. */
  reusePort?: boolean
}

/** The listeners a parent master handed over, once: the variable is removed. */
export function takeInheritedListeners(): InheritedListener[] | undefined {
  const text = process.env[LISTENERS_ENV]
  delete process.env[LISTENERS_ENV]
  if (!text) return undefined
  return JSON.parse(text) as InheritedListener[]
}

/** Tells the parent that launched this master that it is serving, once. */
export function notifyParentReady(): void {
  if (process.env[NOTIFY_ENV] !== '1') return
  delete process.env[NOTIFY_ENV]
  if (!process.send || !process.connected) return
  process.send({ t: 'master-ready', pid: process.pid }, () => process.disconnect())
}

/** Why this master may not re-exec, if it may not. */
export function reexecRefusal(): string | undefined {
  if (process.pid === 1) {
    return 'corral is PID 1 (a container?): a new master would die with this one. Use a rolling deploy instead'
  }
  return undefined
}

export function spawnNewMaster(listeners: readonly Listener[], emit: (event: MasterEvent) => void): ChildProcess {
  const inherited: InheritedListener[] = listeners.map((l, i) => ({
    fd: FIRST_LISTENER_FD + i,
    address: l.address,
    ...(l.reusePort && { reusePort: true }),
  }))
  const child = spawn(process.execPath, [...process.execArgv, ...process.argv.slice(1)], {
    // Where corral was started, before --chdir: the argv's relative paths mean the same again.
    cwd: START_CWD,
    stdio: ['ignore', 'inherit', 'inherit', 'ipc', ...listeners.map((l) => l.fd)],
    env: { ...process.env, [LISTENERS_ENV]: JSON.stringify(inherited), [NOTIFY_ENV]: '1' },
  })
  let reported = false
  child.on('message', (m: { t?: string }) => {
    if (m?.t === 'master-ready') emit({ type: 'REEXEC_READY' })
  })
  child.on('exit', (code, signal) => {
    if (reported) return
    reported = true
    emit({ type: 'REEXEC_EXIT', code, signal })
  })
  child.on('error', (err) => {
    if (reported) return
    reported = true
    emit({ type: 'REEXEC_FAILED', reason: `could not start a new master: ${err.message}` })
  })
  return child
}
