// The worker processes themselves: spawning them with the listeners as
// inherited fds, signalling them, and turning what they do (exit, IPC) into
// master events. The master machine decides; this only carries out.
import { spawn, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import type { MasterEvent } from '../../machines/master.ts'
import type { StopMode } from '../../machines/master-workers.ts'
import { writeErrorLog, type Logger } from '../logging/log.ts'
import type { Settings } from '../config/registry.ts'
import { captureStuckStack, createStderrForwarder } from './stack-capture.ts'
import { workerHookRef } from '../hooks/master-hooks.ts'
import { workerSpawnIdentity } from '../process/privileges.ts'
import { serveListenerCopies } from './listener-copies.ts'
import {
  FIRST_LISTENER_FD,
  WORKER_ENV,
  type MasterMessage,
  type WorkerMessage,
  type WorkerOptions,
} from '../protocol/master-worker.ts'

// From the sources: src/worker/main.ts; from the bundle: dist/worker.js, beside dist/cli.js.
const WORKER_ENTRY = fileURLToPath(
  new URL(import.meta.url.endsWith('.ts') ? '../worker/main.ts' : './worker.js', import.meta.url),
)

interface Worker {
  readonly child: ChildProcess
  readonly forwarder: ReturnType<typeof createStderrForwarder>
  /** Why the master is ending it, so its exit is logged as expected or not. */
  ending?: 'stop' | 'kill' | 'abort'
}

export interface PoolOptions {
  listenerFds: readonly number[]
  /**
   * What each worker is started with. The settings whole, hooks' functions
   * included: the pool finds the worker-side hooks in them (workerHookRef); a
   * worker gets their values (WorkerOptions.settings), as JSON.
   */
  worker: Omit<WorkerOptions, 'id' | 'fds' | 'settings'> & { settings: Settings }
  emit: (event: MasterEvent) => void
  log: Logger
}

export function createWorkerPool(options: PoolOptions) {
  const { log, emit } = options
  const workers = new Map<number, Worker>()
  // The master's own flags (e.g. a loader) apply to workers too; its
  // inspector flags do not.
  const execArgv = process.execArgv.filter((a) => !a.startsWith('--inspect'))
  // -u/--user, -g/--group (src/process/privileges.ts): who the workers run as.
  const identity = workerSpawnIdentity(options.worker.settings)

  function spawnWorker(id: number): void {
    const settings: WorkerOptions = {
      ...options.worker,
      id,
      fds: options.listenerFds.map((_, i) => FIRST_LISTENER_FD + i),
      // Its server hooks, if the config file has worker-side ones (src/hooks/master-hooks.ts).
      hooks: workerHookRef(options.worker.settings),
    }
    // The title as a last, unused argument: Linux shows a process title only
    // within the space of the original argv, so this makes room for it.
    const title = `corral: worker [${options.worker.name}]`
    const child = spawn(process.execPath, [...execArgv, '--inspect-port=127.0.0.1:0', WORKER_ENTRY, title], {
      ...identity,
      stdio: ['ignore', 'inherit', 'pipe', 'ipc', ...options.listenerFds],
      env: { ...process.env, [WORKER_ENV]: JSON.stringify(settings) },
    })
    const forwarder = createStderrForwarder(child, (line) => writeErrorLog(`${line}\n`))
    const worker: Worker = { child, forwarder }
    workers.set(id, worker)
    let reported = false
    const exited = (code: number | null, signal: string | null) => {
      if (reported) return
      reported = true
      workers.delete(id)
      logExit(worker, code, signal)
      emit({ type: 'WORKER_EXIT', id, code, signal })
    }
    child.on('message', (message: WorkerMessage) => {
      if (message.t === 'hb') emit({ type: 'HEARTBEAT', id })
      else if (message.t === 'ready') emit({ type: 'WORKER_READY', id })
      else if (message.t === 'retire') emit({ type: 'WORKER_RETIRING', id, reason: message.reason })
    })
    // --worker-connections: a worker at its limit closes its listening handles and asks for fresh copies (src/worker/limits.ts).
    serveListenerCopies(child, options.listenerFds, (message) => log.error(message))
    child.on('exit', exited)
    child.on('error', (err) => {
      log.error(`Worker ${id} could not be started: ${err.message}`)
      exited(null, null)
    })
    if (child.pid !== undefined) log.info(`Booting worker with pid: ${child.pid}`)
  }

  function logExit(worker: Worker, code: number | null, signal: string | null): void {
    const pid = worker.child.pid
    if (worker.ending === 'stop' && code === 0) return log.info(`Worker exited (pid: ${pid})`)
    if (signal === 'SIGKILL' && worker.ending) return log.info(`Worker (pid:${pid}) was killed`)
    if (signal)
      return log.error(
        `Worker (pid:${pid}) was sent ${signal}!${signal === 'SIGKILL' ? ' Perhaps out of memory?' : ''}`,
      )
    if (code !== 0) return log.error(`Worker (pid:${pid}) exited with code ${code}`)
    log.info(`Worker exited (pid: ${pid})`)
  }

  function stopWorker(id: number, mode: StopMode): void {
    const worker = workers.get(id)
    if (!worker) return
    worker.ending ??= 'stop'
    worker.child.kill(mode === 'graceful' ? 'SIGTERM' : 'SIGINT')
  }

  function killWorker(id: number): void {
    const worker = workers.get(id)
    if (!worker) return
    worker.ending = 'kill'
    log.warning(`Worker (pid:${worker.child.pid}) did not stop in time; sending SIGKILL`)
    worker.child.kill('SIGKILL')
  }

  /** gunicorn's WORKER TIMEOUT, plus the stack the worker is stuck in; `beforeKill` is the workerAbort hook's turn. */
  async function abortWorker(
    id: number,
    beforeKill?: (pid: number, frames: string[] | undefined) => Promise<void>,
  ): Promise<void> {
    const worker = workers.get(id)
    if (!worker?.child.pid) return
    worker.ending = 'abort'
    const pid = worker.child.pid
    log.critical(`WORKER TIMEOUT (pid:${pid})`)
    const frames = await captureStuckStack(pid, worker.forwarder)
    if (frames?.length)
      log.critical(`Worker (pid:${pid}) was stuck at:\n${frames.map((f) => `    at ${f}`).join('\n')}`)
    else log.critical(`Worker (pid:${pid}): could not capture where it was stuck`)
    await beforeKill?.(pid, frames)
    worker.child.kill('SIGKILL')
  }

  function broadcast(message: MasterMessage): void {
    for (const { child } of workers.values()) if (child.connected) child.send(message)
  }

  /** Last resort when the master itself is going down: nothing outlives it. */
  function killAll(): void {
    for (const { child } of workers.values()) child.kill('SIGKILL')
  }

  /** HUP re-read the settings: workers spawned from now on get these. */
  function setSettings(settings: PoolOptions['worker']['settings']): void {
    options.worker = { ...options.worker, settings }
  }

  const pidOf = (id: number) => workers.get(id)?.child.pid
  return {
    spawnWorker,
    stopWorker,
    killWorker,
    abortWorker,
    broadcast,
    killAll,
    setSettings,
    pidOf,
    pids: () => [...workers.values()].map((w) => w.child.pid),
  }
}

export type WorkerPool = ReturnType<typeof createWorkerPool>
