// Server hooks: gunicorn's set, camelCase, set as functions in a config file.
// This module holds what both kinds of process share: the hooks' names, the
// views they are given, and how a call is made safe (a hook that throws or
// rejects is logged with its name; the server goes on). The master runs its
// hooks through src/master/server-hooks.ts, a worker through src/hooks/worker-hooks.ts.
// Where each fires, in which process and statechart state: spec/hooks.md.
//
// It is imported by workers: keep it free of anything but types at run time.
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { SecureContextOptions } from 'node:tls'
import type { Logger } from '../logging/log.ts'
import type { ExitCause } from '../../machines/master-workers.ts'
// Type-only, and from the table of settings with values, not the registry:
// the registry holds the hooks' entries, typed by `Hooks` below, so
// deriving ServerSettings from it would tie these types in a circle
// (src/config/server-settings.ts says more).
import type { ServerSettings } from '../config/server-settings.ts'

/** Every hook, in the order of spec/hooks.md. */
export const HOOK_NAMES = [
  'onStarting',
  'onReload',
  'whenReady',
  'preFork',
  'postFork',
  'postWorkerInit',
  'workerInt',
  'workerAbort',
  'preExec',
  'preRequest',
  'postRequest',
  'childExit',
  'workerExit',
  'nworkersChanged',
  'onExit',
  'sslContext',
  'onDirtyStarting',
  'dirtyPostSpawn',
  'dirtyWorkerInit',
  'dirtyWorkerExit',
] as const
export type HookName = (typeof HOOK_NAMES)[number]

/** The hooks that run in a worker process; a worker imports the config file only when one of these is set. */
export const WORKER_HOOK_NAMES = [
  'postFork',
  'postWorkerInit',
  'workerInt',
  'preRequest',
  'postRequest',
  'workerExit',
  'sslContext',
] as const
export type WorkerHookName = (typeof WORKER_HOOK_NAMES)[number]

/** What the master tells a worker about its hooks: the config file to import, and which worker-side hooks it holds. */
export interface WorkerHookRef {
  /** Absolute path of the config file. */
  readonly file: string
  readonly names: readonly WorkerHookName[]
}

/** Settings as every process sees them: values only (a worker gets them as JSON, without functions). */
export type { ServerSettings }

/** The master (gunicorn's arbiter) as a worker process knows it. */
export interface ServerInfo {
  /** The master's pid. */
  readonly pid: number
  /** The APP argument, e.g. `app.ts:handler`. */
  readonly app: string
  /** The name in process titles: --name, else the app. */
  readonly name: string
  readonly settings: ServerSettings
  /** The error log, lines tagged with the pid of the process the hook runs in. */
  readonly log: Logger
}

/** The master (gunicorn's arbiter), as master-side hooks see it. */
export interface Server extends ServerInfo {
  /** The number of workers the master keeps: --workers, changed by TTIN, TTOU and HUP. */
  readonly numWorkers: number
  /** The listening addresses; empty in onStarting, which runs before anything is bound. */
  readonly listeners: readonly string[]
  /** The worker processes alive now. */
  readonly workers: readonly WorkerInfo[]
}

/** A worker process as the master sees it. */
export interface WorkerInfo {
  /** The master's number for it: 1, 2, … never reused. */
  readonly id: number
  /** Undefined in preFork, which runs before the process exists. */
  readonly pid: number | undefined
  /** 0 for the first workers; each reload (HUP) starts the next. */
  readonly generation: number
}

/** A worker that has exited (childExit). */
export interface ExitedWorker extends WorkerInfo {
  /** Its exit code, or null when a signal ended it. */
  readonly exitCode: number | null
  /** The signal that ended it (`SIGKILL`), or null. */
  readonly signal: string | null
  /**
   * Why it left, as the master decided it: `crash`, `boot-failure`,
   * `timeout`, `max-requests`, `max-memory`, `retired`, `killed` (corral ctl
   * worker kill), `scaled-down`, `reload`, `abandoned-reload` or `stop`.
   */
  readonly cause: ExitCause
}

/** A dirty worker (spec/dirty.md), as the dirty pool's hooks see it. */
export interface DirtyWorkerInfo {
  /** The master's number for it, never reused (apart from the HTTP workers'). */
  readonly id: number
  /** Its process id (in dirtyWorkerInit: its own). */
  readonly pid: number | undefined
  /** Its place in the pool: what it carries depends on this alone. */
  readonly slot: number
  readonly generation: number
  /** The --dirty-app names it loads. */
  readonly apps: readonly string[]
}

/** A dirty worker that has exited (dirtyWorkerExit). */
export interface ExitedDirtyWorker extends DirtyWorkerInfo {
  readonly exitCode: number | null
  readonly signal: string | null
  /** `crash`, `boot-failure`, `timeout`, `scaled-down`, `reload`, `abandoned-reload` or `stop`. */
  readonly cause: string
}

/** A worker killed for missing its heartbeat (workerAbort), still alive while the hook runs. */
export interface AbortedWorker extends WorkerInfo {
  readonly pid: number
  /** The JavaScript frames it was stuck in, innermost first; undefined when they could not be read. */
  readonly stack: readonly string[] | undefined
  /** The master's error log. */
  readonly log: Logger
}

/** The worker process itself, as worker-side hooks see it. */
export interface Worker {
  readonly id: number
  readonly pid: number
  /** The master's pid. */
  readonly ppid: number
  readonly app: string
  readonly name: string
  readonly settings: ServerSettings
  /** The error log, lines tagged with this worker's pid. */
  readonly log: Logger
  /** True once the app is loaded, postWorkerInit has run and the worker serves. */
  readonly booted: boolean
  /** False once the worker has begun to stop. */
  readonly alive: boolean
}

/**
 * The hooks, as a config file sets them. Each may be async: corral awaits it
 * where gunicorn's order needs it (see spec/hooks.md). What a hook returns is
 * otherwise ignored.
 */
export interface Hooks {
  /** Master, before the listeners are bound. A throw stops corral with exit 1. */
  onStarting: (server: Server) => unknown
  /** Master, when a reload (HUP) starts a new generation, before its workers are spawned. */
  onReload: (server: Server) => unknown
  /** Master, once the listeners are bound, before the first workers are spawned. */
  whenReady: (server: Server) => unknown
  /** Master, just before a worker process is spawned. */
  preFork: (server: Server, worker: WorkerInfo) => unknown
  /** Worker, first thing in a new worker process, before the app is imported. */
  postFork: (server: ServerInfo, worker: Worker) => unknown
  /** Worker, after the app is imported, before the worker serves and reports ready. */
  postWorkerInit: (worker: Worker) => unknown
  /** Worker, when it receives SIGINT or SIGQUIT, before it acts on it. */
  workerInt: (worker: Worker) => unknown
  /** Master, when a worker missed its heartbeat: after its stack is captured, before it is killed. */
  workerAbort: (worker: AbortedWorker) => unknown
  /** Master, on USR2, just before the new master is started. */
  preExec: (server: Server) => unknown
  /** Worker, before the app handles a request. */
  preRequest: (worker: Worker, req: IncomingMessage) => unknown
  /** Worker, after a response has been sent (or the connection closed under it). */
  postRequest: (worker: Worker, req: IncomingMessage, res: ServerResponse) => unknown
  /** Master, after a worker process has exited. */
  childExit: (server: Server, worker: ExitedWorker) => unknown
  /** Worker, as the worker process exits, after it has stopped serving. */
  workerExit: (server: ServerInfo, worker: Worker) => unknown
  /** Master, at start (oldValue undefined) and whenever the number of workers changes. */
  nworkersChanged: (server: Server, newValue: number, oldValue: number | undefined) => unknown
  /** Master, just before it exits. */
  onExit: (server: Server) => unknown
  /**
   * Worker, when it builds its TLS server (--certfile): returns the TLS options
   * to use, e.g. `{ ...defaults(), minVersion: 'TLSv1.3' }`.
   */
  sslContext: (
    server: ServerInfo,
    defaults: () => SecureContextOptions,
  ) => SecureContextOptions | Promise<SecureContextOptions>
  /** Master, before the first dirty workers are spawned (when there is a --dirty-app). */
  onDirtyStarting: (server: ServerInfo) => unknown
  /** Master, once a dirty worker process is spawned. */
  dirtyPostSpawn: (server: ServerInfo, worker: DirtyWorkerInfo) => unknown
  /** Dirty worker, once its apps are loaded (their init() done), before it reports ready. */
  dirtyWorkerInit: (worker: DirtyWorkerInfo) => unknown
  /** Master, after a dirty worker process has exited. */
  dirtyWorkerExit: (server: ServerInfo, worker: ExitedDirtyWorker) => unknown
}

// ---------------------------------------------------------------------------
// Calling hooks

/** One line saying why: the message of an Error, else the value. */
export function reason(err: unknown): string {
  if (err instanceof Error) return err.message.split('\n')[0] || err.name
  try {
    return typeof err === 'string' ? err : (JSON.stringify(err) ?? String(err))
  } catch {
    return String(err)
  }
}

/** Logs a failed hook: its name and the reason on the first line, the stack (if any) after. */
export function logHookFailure(log: Logger, name: string, err: unknown): void {
  const stack = err instanceof Error && err.stack !== undefined ? err.stack : undefined
  if (stack === undefined) log.error(`Hook ${name} failed: ${reason(err)}`)
  else log.exception(`Hook ${name} failed: ${reason(err)}`, err)
}

export const isThenable = (v: unknown): v is PromiseLike<unknown> =>
  (typeof v === 'object' || typeof v === 'function') &&
  v !== null &&
  typeof (v as { then?: unknown }).then === 'function'

/**
 * Calls a hook and waits for it if it returns a promise. Never throws: a
 * failure is logged with the hook's name and its reason returned (undefined
 * when the hook ran, or is not set).
 */
export async function callHook(
  log: Logger,
  name: string,
  fn: ((...args: never[]) => unknown) | undefined,
  args: readonly unknown[],
): Promise<string | undefined> {
  if (fn === undefined) return undefined
  try {
    const result = (fn as (...a: readonly unknown[]) => unknown)(...args)
    if (isThenable(result)) await result
    return undefined
  } catch (err) {
    logHookFailure(log, name, err)
    return reason(err)
  }
}

/** Resolves after `ms`, unref'd so it never keeps a process alive by itself. */
export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref())
}

/**
 * Waits for a call at most `ms`; says so in the log (`what` names it) when
 * it is still running then, and carries on without it.
 */
export async function withinMs(log: Logger, what: string, call: Promise<unknown>, ms: number): Promise<void> {
  let late = false
  await Promise.race([call, delay(ms).then(() => (late = true))])
  if (late) log.warning(`${what} still running after ${ms} ms; not waiting for it`)
}
