// Where the master's listeners come from: sockets handed over by a previous
// master (USR2), else sockets passed by systemd (socket activation), else
// the --bind addresses.
//
// systemd's protocol (sd_listen_fds(3)): the service is started with its
// listening sockets open as fds 3 … 3+N-1, LISTEN_FDS=N, and LISTEN_PID set to
// the service's own pid (so that a child that merely inherits the
// environment does not take them for its own); LISTEN_FDNAMES optionally
// names them. corral serves exactly those sockets and binds nothing else, and
// removes the variables at once, as sd_listen_fds(unset_environment=1) does,
// so that workers, a USR2 master and whatever the app starts never see them.
import type { Logger } from '../logging/log.ts'
import { parseBind, type Bind } from '../net/binds.ts'
import type { InheritedListener } from './reexec.ts'

/** SD_LISTEN_FDS_START */
const SYSTEMD_FIRST_FD = 3

interface SystemdSockets {
  readonly fds: readonly number[]
  /** LISTEN_FDNAMES, when systemd named them (FileDescriptorName=). */
  readonly names: readonly string[]
}

/**
 * The sockets systemd passed to this process, if any; the variables are
 * removed from the environment on the first call, whatever they held.
 * A LISTEN_PID naming another process means the sockets are not ours.
 */
function takeSystemdSockets(
  env: NodeJS.ProcessEnv = process.env,
  pid: number = process.pid,
): SystemdSockets | undefined {
  const count = env.LISTEN_FDS
  const owner = env.LISTEN_PID
  const names = env.LISTEN_FDNAMES
  delete env.LISTEN_FDS
  delete env.LISTEN_PID
  delete env.LISTEN_FDNAMES
  let result: SystemdSockets | undefined
  if (
    count !== undefined &&
    owner !== undefined &&
    /^\d+$/.test(owner) &&
    Number(owner) === pid &&
    /^\d+$/.test(count) &&
    Number(count) > 0
  ) {
    const n = Number(count)
    result = {
      fds: Array.from({ length: n }, (_, i) => SYSTEMD_FIRST_FD + i),
      names: names ? names.split(':') : [],
    }
  }
  return result
}

/** Whether this process was started with systemd sockets of its own (without taking them). */
function isSocketActivated(env: NodeJS.ProcessEnv = process.env, pid: number = process.pid): boolean {
  return (
    env.LISTEN_FDS !== undefined &&
    /^\d+$/.test(env.LISTEN_FDS) &&
    Number(env.LISTEN_FDS) > 0 &&
    env.LISTEN_PID === String(pid)
  )
}

/** Settings that cannot work with socket activation: one line each. */
export function checkSocketActivation(
  settings: { readonly daemon: boolean },
  env: NodeJS.ProcessEnv = process.env,
): string[] {
  if (!isSocketActivated(env)) return []
  return settings.daemon
    ? [
        '-D/--daemon: not with systemd socket activation (LISTEN_FDS): the sockets belong to this process; let systemd run corral in the foreground',
      ]
    : []
}

/** The settings that say where to listen. */
interface BindSettings {
  /** --bind, as the user wrote the addresses (checked when the settings were resolved). */
  readonly bind: readonly string[]
  readonly reusePort: boolean
}

/**
 * What the master listens on. A master started by USR2 serves what its
 * parent handed over; one started by systemd serves systemd's sockets; any
 * other binds --bind. With --reuse-port, TCP addresses become per-worker
 * sockets (src/net/listeners.ts); sockets from systemd stay shared.
 */
export function chooseBinds(
  settings: BindSettings,
  inherited: readonly InheritedListener[] | undefined,
  log: Logger,
): Bind[] {
  if (inherited)
    return inherited.map(({ fd, reusePort }) => ({ kind: 'fd', fd, ...(reusePort && { reusePort: true }) }))
  const systemd = takeSystemdSockets()
  if (systemd) {
    const named = systemd.names.length === systemd.fds.length ? ` (${systemd.names.join(', ')})` : ''
    log.info(`Socket activation: serving ${systemd.fds.length} socket(s) from systemd${named}; --bind is not used`)
    if (settings.reusePort)
      log.warning('--reuse-port does not apply to sockets from systemd: they are shared by the workers')
    return systemd.fds.map((fd) => ({ kind: 'fd', fd }))
  }
  return settings.bind.map(parseBind)
}
