// What the dirty pool's processes say to each other (spec/dirty.md,
// Transport). Between an HTTP worker and a dirty worker, on the dirty
// worker's unix socket: frames of a 4-byte length and a node:v8 serialization
// (structured clone). Between the master and the processes, on their IPC
// channels: the small JSON messages below.
import type { Socket } from 'node:net'
import { deserialize, serialize } from 'node:v8'

/** The environment variable that carries a dirty worker's options (JSON). */
export const DIRTY_ENV = 'CORRAL_DIRTY'

export interface DirtyWorkerOptions {
  readonly id: number
  readonly slot: number
  readonly generation: number
  readonly socket: string
  readonly apps: readonly { readonly name: string; readonly module: string; readonly exportName?: string | undefined }[]
  readonly concurrency: number
  /** The config file, when it sets dirtyWorkerInit: imported by the dirty worker for it. */
  readonly hooksFile?: string | undefined
}

/** The typed errors a call can end with (DirtyError's `code`). */
export type DirtyErrorCode =
  | 'DIRTY_APP_ERROR'
  | 'DIRTY_NO_METHOD'
  | 'DIRTY_TIMEOUT'
  | 'DIRTY_ABORTED'
  | 'DIRTY_NO_WORKER'
  | 'DIRTY_DRAINING'
  | 'DIRTY_WORKER_LOST'
  | 'DIRTY_UNAVAILABLE'

export type DirtyRequest =
  | { readonly id: number; readonly app: string; readonly method: string; readonly args: readonly unknown[] }
  /** The caller gave up: `timeout` (its timeout passed) or `aborted` (its AbortSignal). */
  | { readonly id: number; readonly abort: 'timeout' | 'aborted' }

export interface WireError {
  readonly code: DirtyErrorCode
  readonly message: string
  readonly name?: string | undefined
  readonly stack?: string | undefined
}

export type DirtyReply =
  | { readonly id: number; readonly value: unknown }
  | { readonly id: number; readonly error: WireError }

/** How calls ended, as the dirty worker saw them (`corral_dirty_calls_total{outcome}`). */
export const CALL_OUTCOMES = ['ok', 'error', 'no-method', 'timeout', 'aborted'] as const
export type CallOutcome = (typeof CALL_OUTCOMES)[number]

/**
 * A dirty worker's calls since it started, by app: counts by outcome, and
 * durations as counts per DURATION_BUCKETS bound (the last: above them all)
 * with their sum in seconds.
 */
export type CallStats = Record<
  string,
  { outcomes: Partial<Record<CallOutcome, number>>; buckets: number[]; sum: number }
>

/** Dirty worker → master. `calls`: in a heartbeat, when they changed since the last one. */
export type DirtyWorkerMessage =
  | { t: 'ready' }
  | { t: 'hb'; oldestCallMs: number; calls?: CallStats }
  | { t: 'load-failed'; reason: string }

/** One dirty worker an HTTP worker may call. */
export interface RosterEntry {
  readonly id: number
  readonly socket: string
  readonly apps: readonly string[]
}

/** HTTP worker → master: the roster, now and at every change. */
export interface RosterRequest {
  readonly t: 'dirty-roster?'
}

/** Master → HTTP worker. */
export interface RosterMessage {
  readonly t: 'dirty-roster'
  readonly workers: readonly RosterEntry[]
  /** Every app name the settings give, carried now or not. */
  readonly apps: readonly string[]
  /** --dirty-timeout, seconds (0: none). */
  readonly timeout: number
  readonly draining: boolean
}

/** Writes one message as a frame. */
export function writeFrame(socket: Socket, message: DirtyRequest | DirtyReply): void {
  const body = serialize(message)
  const head = Buffer.allocUnsafe(4)
  head.writeUInt32BE(body.length)
  socket.cork()
  socket.write(head)
  socket.write(body)
  socket.uncork()
}

/** Reads frames off a stream of chunks; each whole one is handed to `onMessage`. */
export function frameReader(onMessage: (message: unknown) => void): (chunk: Buffer) => void {
  let pending: Buffer[] = []
  let have = 0
  let need = -1
  return (chunk) => {
    pending.push(chunk)
    have += chunk.length
    for (;;) {
      if (need < 0) {
        if (have < 4) return
        const all = pending.length === 1 ? (pending[0] as Buffer) : Buffer.concat(pending, have)
        need = all.readUInt32BE(0)
        pending = [all.subarray(4)]
        have -= 4
      }
      if (have < need) return
      const all = pending.length === 1 ? (pending[0] as Buffer) : Buffer.concat(pending, have)
      const body = all.subarray(0, need)
      const rest = all.subarray(need)
      pending = rest.length > 0 ? [rest] : []
      have = rest.length
      need = -1
      onMessage(deserialize(body))
    }
  }
}
