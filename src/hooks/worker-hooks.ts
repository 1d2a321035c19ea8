// The server hooks that run in a worker process: postFork, postWorkerInit,
// workerInt, preRequest, postRequest, workerExit (spec/hooks.md).
//
// Settings reach a worker as JSON, so functions do not: the worker imports
// the config file itself, and only when the master saw worker-side hooks in
// it (WorkerOptions.hooks). It imports the file directly rather than through
// src/config/sources.ts's loader: that loader validates every setting with
// effect/Schema, which would cost each worker ~230 ms and ~45 MB at boot
// (measured from sources) for a file the master has just validated.
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Logger } from '../logging/log.ts'
import type { WorkerOptions } from '../protocol/master-worker.ts'
import { importUserModule } from '../process/user-modules.ts'
import {
  callHook,
  delay,
  isThenable,
  logHookFailure,
  reason,
  withinMs,
  type Hooks,
  type ServerInfo,
  type Worker,
  type WorkerHookName,
} from './hooks.ts'

type Handler = (req: IncomingMessage, res: ServerResponse) => void
type WorkerHooks = Partial<Pick<Hooks, WorkerHookName>>

/** As for the master's read of the config file: a top-level await that never settles is an error, not a hang. */
const HOOKS_LOAD_TIMEOUT_MS = 10_000

/** Imports the config file named by the master and picks the worker-side hooks out of it. Never throws. */
async function loadWorkerHooks(ref: WorkerOptions['hooks'], log: Logger): Promise<WorkerHooks> {
  const hooks: WorkerHooks = {}
  if (ref === undefined || ref.names.length === 0) return hooks
  const failed = (why: string) => {
    log.error(
      `Server hooks: ${ref.file} could not be loaded in this worker (${why}); it runs without ${ref.names.join(', ')}`,
    )
    return hooks
  }
  let mod: { default?: unknown }
  try {
    const loading = importUserModule(ref.file) as Promise<{ default?: unknown }>
    const timedOut = delay(HOOKS_LOAD_TIMEOUT_MS).then(() => undefined)
    const loaded = await Promise.race([loading, timedOut])
    if (loaded === undefined) return failed(`still loading after ${HOOKS_LOAD_TIMEOUT_MS / 1000} s`)
    mod = loaded
  } catch (err) {
    return failed(reason(err))
  }
  const config = mod.default as Record<string, unknown> | undefined
  for (const name of ref.names) {
    const fn = typeof config === 'object' && config !== null ? config[name] : undefined
    // The file changed on disk since the master read it (a HUP re-reads it).
    if (typeof fn !== 'function')
      log.warning(`Server hooks: ${ref.file} no longer sets ${name}; this worker runs without it`)
    else (hooks as Record<string, unknown>)[name] = fn
  }
  return hooks
}

export interface WorkerHooksRuntime {
  /** The view worker-side hooks get. */
  readonly worker: Worker
  /** Loads the hooks (only if the master saw some), then runs postFork. Never throws. */
  postFork(): Promise<void>
  /** Runs postWorkerInit; the worker is booted after it. Never throws. */
  postWorkerInit(): Promise<void>
  /** SIGINT or SIGQUIT arrived: runs workerInt, then `then` (at once when there is no hook, or on a second signal). */
  interrupted(then: () => void): void
  /** The handler with preRequest and postRequest around it; the handler itself when neither is set. */
  wrapHandler(handler: Handler): Handler
  /** The worker is exiting: runs workerExit, waiting at most `graceful-timeout` (1 s when the master is gone). */
  exiting(): Promise<void>
  /** The TLS options to serve with: sslContext's, else `defaults`. Never throws. */
  sslContext<T>(defaults: T): Promise<T>
}

export function createWorkerHooks(options: WorkerOptions, log: Logger): WorkerHooksRuntime {
  const { id, app, name, settings } = options
  let hooks: WorkerHooks = {}
  let booted = false
  let alive = true
  let interrupting = false
  const server: ServerInfo = { pid: process.ppid, app, name, settings, log }
  const worker: Worker = {
    id,
    pid: process.pid,
    ppid: process.ppid,
    app,
    name,
    settings,
    log,
    get booted() {
      return booted
    },
    get alive() {
      return alive
    },
  }

  return {
    worker,
    async postFork() {
      hooks = await loadWorkerHooks(options.hooks, log)
      await callHook(log, 'postFork', hooks.postFork, [server, worker])
    },
    async postWorkerInit() {
      await callHook(log, 'postWorkerInit', hooks.postWorkerInit, [worker])
      booted = true
    },
    interrupted(then) {
      const hook = hooks.workerInt
      if (hook === undefined || interrupting) return then()
      interrupting = true
      alive = false
      void callHook(log, 'workerInt', hook, [worker]).then(() => then())
    },
    wrapHandler(handler) {
      const pre = hooks.preRequest
      const post = hooks.postRequest
      if (pre === undefined && post === undefined) return handler
      const preFailed = (err: unknown) => logHookFailure(log, 'preRequest', err)
      const postFailed = (err: unknown) => logHookFailure(log, 'postRequest', err)
      // One shared listener, no closure per request.
      const afterResponse =
        post &&
        function (this: ServerResponse): void {
          try {
            const r = post(worker, this.req, this)
            if (isThenable(r)) r.then(undefined, postFailed)
          } catch (err) {
            postFailed(err)
          }
        }
      return (req, res) => {
        if (afterResponse) res.once('close', afterResponse)
        if (pre) {
          let r: unknown
          try {
            r = pre(worker, req)
          } catch (err) {
            preFailed(err)
          }
          // Waited for only when the hook returned a promise; a failure does not cost the request.
          if (isThenable(r)) {
            r.then(
              () => handler(req, res),
              (err: unknown) => {
                preFailed(err)
                handler(req, res)
              },
            )
            return
          }
        }
        handler(req, res)
      }
    },
    async sslContext(defaults) {
      const hook = hooks.sslContext
      if (hook === undefined) return defaults
      try {
        return (await hook(server, () => ({ ...defaults }) as never)) as typeof defaults
      } catch (err) {
        logHookFailure(log, 'sslContext', err)
        return defaults
      }
    },
    async exiting() {
      alive = false
      const hook = hooks.workerExit
      if (hook === undefined) return
      const cap = process.connected ? Math.max(1, settings.gracefulTimeout) * 1000 : 1000
      await withinMs(log, 'Hook workerExit', callHook(log, 'workerExit', hook, [server, worker]), cap)
    },
  }
}
