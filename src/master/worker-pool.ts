// The worker processes themselves: spawning them with the listeners as
// inherited fds, signalling them, and turning what they do (exit, IPC) into
// master events. The master machine decides; this only carries out. It keeps
// the process handles, each with the facts it was spawned with (its id and
// generation); what state a worker is in is the machine's business.
import { spawn, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import type { MasterEvent } from '../../machines/master.ts'
import type { ExitCause, StopMode, WorkerRole } from '../../machines/master-workers.ts'
import type { AbortedWorker, WorkerInfo } from '../hooks/hooks.ts'
import { writeErrorLog, type Logger } from '../logging/log.ts'
import type { Settings } from '../config/registry.ts'
import { captureStuckStack, createStderrForwarder } from './stack-capture.ts'
import { workerHookRef } from './server-hooks.ts'
import type { workerSpawnIdentity } from '../process/privileges.ts'
import { serveListenerCopies } from './listener-copies.ts'
import { balanceConnections } from './connection-balance.ts'
import { followAppMetrics } from './app-metrics.ts'
import { followDirty } from '../dirty/pool.ts'
import { listenNotice } from '../http/app-server.ts'
import {
  FIRST_LISTENER_FD,
  WORKER_ENV,
  type MasterMessage,
  type WorkerMessage,
  type WorkerOptions,
  type WorkerStateMessage,
  type WorkerStatsMessage,
} from '../protocol/master-worker.ts'

// From the sources: src/worker/main.ts; from the bundle: dist/worker.js, beside dist/cli.js.
const WORKER_ENTRY = fileURLToPath(
  new URL(import.meta.url.endsWith('.ts') ? '../worker/main.ts' : './worker.js', import.meta.url),
)

interface Worker {
  readonly generation: number
  readonly child: ChildProcess
  readonly forwarder: ReturnType<typeof createStderrForwarder>
}

export interface PoolOptions {
  listenerFds: readonly number[]
  /** What every worker is told besides its id, fds and settings. */
  worker: Omit<WorkerOptions, 'id' | 'fds' | 'settings' | 'hooks'>
  /** -u/--user, -g/--group (src/process/privileges.ts): who the workers run as. */
  identity: ReturnType<typeof workerSpawnIdentity>
  emit: (event: MasterEvent) => void
  log: Logger
  /** A worker's batched counters (src/worker/request-stats.ts): not chart events. */
  report?: (id: number, message: WorkerStatsMessage) => void
  /** --inspector only: a worker's own machine took an event (src/master/inspector.ts). */
  workerState?: (id: number, message: WorkerStateMessage) => void
}

export function createWorkerPool(options: PoolOptions) {
  const { log, emit, identity } = options
  const workers = new Map<number, Worker>()
  const noticed = new Set<string>()
  const addresses = options.worker.addresses ?? []
  // The master's own flags (e.g. a loader) apply to workers too; its
  // inspector flags do not.
  const execArgv = process.execArgv.filter((a) => !a.startsWith('--inspect'))

  /** The machine's spawnWorker: a worker of `generation`, started with that generation's settings, serving or as a spare. */
  function spawnWorker(id: number, generation: number, settings: Settings, role: WorkerRole = 'serving'): void {
    const told: WorkerOptions = {
      ...options.worker,
      ...(role === 'spare' ? { standby: true } : {}),
      id,
      fds: options.listenerFds.map((_, i) => FIRST_LISTENER_FD + i),
      settings,
      // Its server hooks, if the config file has worker-side ones (src/master/server-hooks.ts).
      hooks: workerHookRef(settings),
    }
    // The title as a last, unused argument: Linux shows a process title only
    // within the space of the original argv, so this makes room for it.
    const title = `corral: worker [${options.worker.name}]`
    const child = spawn(process.execPath, [...execArgv, '--inspect-port=127.0.0.1:0', WORKER_ENTRY, title], {
      ...identity,
      stdio: ['ignore', 'inherit', 'pipe', 'ipc', ...options.listenerFds],
      env: workerEnv(told),
    })
    const forwarder = createStderrForwarder(child, (line) => writeErrorLog(`${line}\n`))
    const worker: Worker = { generation, child, forwarder }
    workers.set(id, worker)
    let reported = false
    const exited = (code: number | null, signal: string | null) => {
      if (reported) return
      reported = true
      workers.delete(id)
      emit({ type: 'WORKER_EXIT', id, pid: child.pid, code, signal })
    }
    child.on('message', (message: WorkerMessage) => {
      if (message.t === 'hb') emit({ type: 'HEARTBEAT', id })
      else if (message.t === 'ready') emit({ type: 'WORKER_READY', id })
      else if (message.t === 'retire')
        emit({ type: 'WORKER_RETIRING', id, cause: message.cause, reason: message.reason })
      else if (message.t === 'stats') options.report?.(id, message)
      else if (message.t === 'state') options.workerState?.(id, message)
      else if (message.t === 'app-listen')
        noticeOnce(listenNotice(message.asked, message.served, addresses), message.served ? 'info' : 'warning')
      else if (message.t === 'load-failed') noticeOnce(message.reason, 'error')
    })
    // --worker-connections: a worker at its limit closes its listening handles and asks for fresh copies (src/worker/limits.ts).
    serveListenerCopies(child, options.listenerFds, (message) => log.error(message))
    balanceConnections(child) // --balance-slack: sums the workers' connection counts and sends them back
    followAppMetrics(child) // --metrics-bind: the app's prom-client metrics, gathered at each scrape
    followDirty(child) // dirty(): the roster of dirty workers, on the worker's first call (src/dirty/pool.ts)
    child.on('exit', exited)
    child.on('error', (err) => {
      // Node reports here both a spawn that failed and a message that could
      // not be sent (EPIPE to a worker that is dying, e.g. SIGKILLed): only
      // the first has no 'exit' to follow; the second's exit says how it died.
      if (child.pid !== undefined) return log.debug(`Worker ${id}: ${err.message}`)
      log.error(`Worker ${id} could not be started: ${err.message}`)
      exited(null, null)
    })
    if (child.pid !== undefined) log.info(`Booting ${role === 'spare' ? 'standby ' : ''}worker with pid: ${child.pid}`)
  }

  /**
   * What every worker would say alike (the app's own listen(), a load
   * failure), said once for all of them, for the master's life.
   */
  function noticeOnce(line: string, level: 'info' | 'warning' | 'error'): void {
    if (noticed.has(line)) return
    noticed.add(line)
    log[level](line)
  }

  function stopWorker(id: number, mode: StopMode): void {
    const worker = workers.get(id)
    if (!worker) return
    worker.child.kill(mode === 'graceful' ? 'SIGTERM' : 'SIGINT')
  }

  function killWorker(id: number): void {
    const worker = workers.get(id)
    if (!worker) return
    log.warning(`Worker (pid:${worker.child.pid}) did not stop in time; sending SIGKILL`)
    worker.child.kill('SIGKILL')
  }

  /** gunicorn's WORKER TIMEOUT, plus the stack the worker is stuck in; `beforeKill` is the workerAbort hook's turn. */
  async function abortWorker(
    id: number,
    beforeKill?: (worker: Omit<AbortedWorker, 'log'>) => Promise<void>,
  ): Promise<void> {
    const worker = workers.get(id)
    if (!worker?.child.pid) return
    const pid = worker.child.pid
    log.critical(`WORKER TIMEOUT (pid:${pid})`)
    const frames = await captureStuckStack(pid, worker.forwarder)
    if (frames?.length)
      log.critical(`Worker (pid:${pid}) was stuck at:\n${frames.map((f) => `    at ${f}`).join('\n')}`)
    else log.critical(`Worker (pid:${pid}): could not capture where it was stuck`)
    await beforeKill?.({ id, pid, generation: worker.generation, stack: frames })
    worker.child.kill('SIGKILL')
  }

  /** The machine's promoteSpare: the spare starts accepting, and says ready again once it does. */
  function promoteSpare(id: number): void {
    const worker = workers.get(id)
    if (!worker?.child.connected) return
    log.info(`Standby worker (pid:${worker.child.pid}) takes over`)
    worker.child.send({ t: 'take-over' } satisfies MasterMessage)
  }

  function broadcast(message: MasterMessage): void {
    for (const { child } of workers.values()) if (child.connected) child.send(message)
  }

  /** Last resort when the master itself is going down: nothing outlives it. */
  function killAll(): void {
    for (const { child } of workers.values()) child.kill('SIGKILL')
  }

  /** The worker processes alive now, for the server hooks. */
  const list = (): WorkerInfo[] => [...workers].map(([id, w]) => ({ id, pid: w.child.pid, generation: w.generation }))

  return { spawnWorker, promoteSpare, stopWorker, killWorker, abortWorker, broadcast, killAll, list }
}

export type WorkerPool = ReturnType<typeof createWorkerPool>

/**
 * The chart's `workerExited`, said in the log: as expected when the master
 * asked it to go (the chart's cause says so), an error when it crashed.
 */
export function logWorkerExit(
  log: Logger,
  {
    pid,
    code,
    signal,
    cause,
  }: { pid?: number | undefined; code: number | null; signal: string | null; cause: ExitCause },
): void {
  const asked = cause !== 'crash' && cause !== 'boot-failure'
  if (asked && code === 0) return log.info(`Worker exited (pid: ${pid})`)
  if (asked && signal === 'SIGKILL') return log.info(`Worker (pid:${pid}) was killed`)
  // Stopped by the master before it had set up its own signal handlers (shutting down while it boots): as asked.
  if (asked && (signal === 'SIGINT' || signal === 'SIGTERM'))
    return log.info(`Worker (pid:${pid}) stopped while booting`)
  if (signal)
    return log.error(`Worker (pid:${pid}) was sent ${signal}!${signal === 'SIGKILL' ? ' Perhaps out of memory?' : ''}`)
  if (code !== 0) return log.error(`Worker (pid:${pid}) exited with code ${code}`)
  log.info(`Worker exited (pid: ${pid})`)
}

// systemd's notify protocol is the master's (src/master/systemd-notify.ts):
// with NotifyAccess=all, which the USR2 hand-over needs, systemd would take an
// app's READY=1, STOPPING=1 or MAINPID= sent from a worker as the service's.
const NOTIFY_VARIABLES = ['NOTIFY_SOCKET', 'WATCHDOG_USEC', 'WATCHDOG_PID']

/** The master's environment, less the notify protocol's, with what the worker is told. */
function workerEnv(told: WorkerOptions): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, [WORKER_ENV]: JSON.stringify(told) }
  for (const name of NOTIFY_VARIABLES) delete env[name]
  return env
}
