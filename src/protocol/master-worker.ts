// What the master and a worker say to each other: the options a worker is
// started with, and the IPC messages between them. Deliberately tiny: there
// is no IPC on the request path.
import type { RetireCause } from '../../machines/worker.ts'
import type { ReusePortAddress } from '../net/listeners.ts'
import type { ListenAsk } from '../http/app-server.ts'
import type { ServerSettings, WorkerHookRef } from '../hooks/hooks.ts'

export const WORKER_ENV = 'CORRAL_WORKER'

export interface WorkerOptions {
  id: number
  app: string
  /** The inherited listening sockets, as fd numbers in the worker. */
  fds: number[]
  /** Where corral serves, as the master logs it (`http://127.0.0.1:8000`, `unix:/path`): what an app's own server.address() answers with when Node cannot tell. */
  addresses?: string[]
  /** --reuse-port: addresses where the worker binds a socket of its own (src/net/listeners.ts). */
  reusePort?: ReusePortAddress[]
  /** The process-title name: --name, else the app. */
  name: string
  /**
   * Every setting's value, as the master resolved it. Not a slice: worker-side
   * hooks are given them all (worker.settings, spec/hooks.md), and a new
   * setting needs no plumbing. The worker's modules each take the few they
   * read. The hooks' functions are not here: JSON carries no function, and a
   * worker imports its hooks from the config file (src/hooks/worker-hooks.ts).
   */
  settings: ServerSettings
  /** The config file's worker-side server hooks, when it has any: the worker imports it for them (src/hooks/worker-hooks.ts). */
  hooks?: WorkerHookRef | undefined
  /** --standby: a spare, which loads the app and waits, not accepting, until told to take over (`take-over`). */
  standby?: true
  /**
   * Only with --inspector: report the worker machine's state after each event
   * (WorkerStateMessage) for the page's worker chart. Absent otherwise, and
   * then the worker neither inspects its machine nor sends anything for it.
   */
  inspector?: true
}

/** Worker → master. */
export type WorkerMessage =
  | { t: 'ready' }
  | { t: 'hb' }
  /** The worker is draining and will exit by itself: max requests, max memory. */
  | { t: 'retire'; cause: RetireCause; reason: string }
  /** --worker-connections: a fresh copy of listener `index`, please (src/worker/limits.ts). */
  | { t: 'listener-copy'; index: number }
  | LoadMessage
  /** The app called listen() on a server of its own: served from corral's listeners, or (a later server) left idle. Logged once by the master. */
  | { t: 'app-listen'; asked: ListenAsk; served: boolean }
  /** The app failed to load (the reason in one line, with file:line): printed once by the master, not once per worker. */
  | { t: 'load-failed'; reason: string }
  /** About once a second, only with the control socket or metrics on (src/worker/request-stats.ts). */
  | WorkerStatsMessage
  | WorkerStateMessage
  | AppMetricsAnswer

/**
 * --inspector only (WorkerOptions.inspector): the worker machine
 * (machines/worker.ts) took an event. The master forwards it to the page as
 * this worker's own chart (src/master/inspector.ts).
 */
export interface WorkerStateMessage {
  t: 'state'
  /** The machine's state after the event: booting, running, draining or dead. */
  value: string
  /** The event, as the machine took it (`xstate.init` when it starts). */
  event: { readonly type: string }
}

/**
 * What a worker has counted since it started (cumulative: a lost message
 * loses nothing), plus its own RSS and CPU time. Sent in batches, never per
 * request.
 */
export interface WorkerStatsMessage {
  t: 'stats'
  requests: number
  /** Requests answered, by status class: 1xx … 5xx. */
  byClass: [number, number, number, number, number]
  inFlight: number
  connections: number
  rssBytes: number
  /** process.cpuUsage(), user + system, in microseconds. */
  cpuMicros: number
  /** With --metrics-bind: how many requests took at most each DURATION_BUCKETS bound and above the previous one (the last entry: above them all), and the sum in seconds. */
  durations?: { counts: number[]; sum: number }
}

/** The upper bounds, in seconds, of corral_request_duration_seconds' buckets. */
export const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10] as const

/** --metrics-bind, master → worker, at each scrape: the app's prom-client metrics, please (src/worker/app-metrics.ts). */
export interface AppMetricsRequest {
  t: 'app-metrics'
  /** Which scrape: an answer that comes after its scrape gave up on it is dropped. */
  seq: number
}

/**
 * The worker's answer: its app's default prom-client registry as
 * getMetricsAsJSON() gives it, or null when the app loaded no prom-client
 * (or its metrics could not be read: then `error` says why).
 */
export interface AppMetricsAnswer {
  t: 'app-metrics'
  seq: number
  metrics: unknown[] | null
  error?: string
}

/** Master → worker. */
export type MasterMessage =
  | { t: 'reopen' }
  /** To a spare (--standby): take a serving worker's place, start accepting. */
  | { t: 'take-over' }
  | AppMetricsRequest
  /** Sent with the listening socket attached, in answer to the worker's request. */
  | { t: 'listener-copy'; index: number }
  | BalanceMessage

/**
 * The first inherited listener's fd in every child corral hands listeners
 * to (workers, and a new master started by USR2): after stdin, stdout,
 * stderr and IPC, in the spawn's stdio order.
 */
export const FIRST_LISTENER_FD = 4

/** A worker's request for a copy of listener `index` (--worker-connections), and the master's answer, which carries the socket. */
export interface ListenerCopyMessage {
  t: 'listener-copy'
  index: number
}

/**
 * --balance-slack, worker → master: how many connections the worker held
 * (the most since its last report), and whether it accepts (src/worker/limits.ts). Sent when it changes, at
 * most every 100 ms, and at once when the worker pauses or starts draining.
 */
export interface LoadMessage {
  t: 'load'
  open: number
  state: 'accepting' | 'paused' | 'leaving'
}

/** --balance-slack, master → worker: the other balancing workers' connections, summed and the largest, and how many workers balance (itself included). */
export interface BalanceMessage {
  t: 'balance'
  others: number
  most: number
  workers: number
}
