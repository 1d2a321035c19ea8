// What the master and a worker say to each other: the options a worker is
// started with, and the IPC messages between them. Deliberately tiny: there
// is no IPC on the request path.
import type { ReusePortAddress } from '../net/listeners.ts'
import type { ServerSettings, WorkerHookRef } from '../hooks/hooks.ts'

export const WORKER_ENV = 'CORRAL_WORKER'

export interface WorkerOptions {
  id: number
  app: string
  /** The inherited listening sockets, as fd numbers in the worker. */
  fds: number[]
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
}

/** Worker → master. */
export type WorkerMessage =
  | { t: 'ready' }
  | { t: 'hb' }
  /** The worker is draining and will exit by itself: max requests, max memory. */
  | { t: 'retire'; reason: string }
  /** --worker-connections: a fresh copy of listener `index`, please (src/worker/limits.ts). */
  | { t: 'listener-copy'; index: number }

/** Master → worker. */
export type MasterMessage =
  | { t: 'reopen' }
  /** Sent with the listening socket attached, in answer to the worker's request. */
  | { t: 'listener-copy'; index: number }

/** The first inherited listener's fd: after stdin, stdout, stderr and IPC. */
export const FIRST_LISTENER_FD = 4

/** A worker's request for a copy of listener `index` (--worker-connections), and the master's answer, which carries the socket. */
export interface ListenerCopyMessage {
  t: 'listener-copy'
  index: number
}
