// `dirty(NAME).call(method, ...args)` in an HTTP worker (spec/dirty.md,
// Calling): the roster of dirty workers comes from the master over the IPC
// channel the worker already has; calls go straight to a dirty worker's unix
// socket, to the least busy (by this worker's own count) of those carrying
// the app. Every call ends: with its value, the app's error, or a DirtyError
// for a timeout, an abort, a dirty worker lost, a pool draining or none there.
import { createConnection, type Socket } from 'node:net'
import {
  frameReader,
  writeFrame,
  type DirtyErrorCode,
  type DirtyReply,
  type RosterEntry,
  type RosterMessage,
  type RosterRequest,
} from './protocol.ts'

export class DirtyError extends Error {
  override name = 'DirtyError'
  readonly code: DirtyErrorCode
  constructor(code: DirtyErrorCode, message: string, options?: { stack?: string | undefined; cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause })
    this.code = code
    // The app's own error keeps the stack it had in the dirty worker.
    if (options?.stack !== undefined) this.stack = options.stack
  }
}

export interface DirtyCallOptions {
  /** Seconds; default --dirty-timeout. */
  readonly timeout?: number
  readonly signal?: AbortSignal
}

/** The methods of a dirty app's module type, as calls that return promises (the last parameter, { signal }, is the pool's). */
type Method<F> = F extends (...args: infer A) => infer R
  ? (...args: A extends [...infer Head, { signal: AbortSignal }?] ? Head : A) => Promise<Awaited<R>>
  : never

type AppOf<T> = T extends new () => infer I ? I : T

interface TypedApp<T> {
  call<K extends keyof AppOf<T> & string>(
    method: K,
    ...args: Parameters<Method<AppOf<T>[K]>>
  ): ReturnType<Method<AppOf<T>[K]>>
}

interface UntypedApp {
  call(method: string, ...args: unknown[]): Promise<unknown>
}

/** A dirty app as its callers see it: typed by the module's type when it is given. */
export type DirtyApp<T = unknown> = unknown extends T ? UntypedApp : TypedApp<T>

interface Pending {
  resolve(value: unknown): void
  reject(err: Error): void
}

interface Connection {
  readonly socket: Socket
  readonly pending: Map<number, Pending>
  /**
   * Calls given up on (timeout, abort) that the dirty worker has not answered
   * yet: while there are any it may be stuck in one, and gets no new call.
   */
  readonly abandoned: Set<number>
}

let roster: RosterMessage | undefined
let asked = false
const rosterWaiters = new Set<() => void>()
const connections = new Map<number, Connection>()
/** Calls in flight per dirty worker, from this process: the routing's measure. */
const inFlight = new Map<number, number>()
let lastId = 0

function onMasterMessage(message: unknown): void {
  if ((message as RosterMessage | null)?.t !== 'dirty-roster') return
  roster = message as RosterMessage
  const live = new Set(roster.workers.map((w) => w.id))
  // A dirty worker that left the roster keeps its connection until it closes it: calls in flight finish there.
  for (const id of inFlight.keys()) if (!live.has(id) && !connections.has(id)) inFlight.delete(id)
  wakeWaiters()
}

/** Calls waiting for a carrier look again. */
function wakeWaiters(): void {
  for (const wake of [...rosterWaiters]) wake()
}

function askRoster(): void {
  if (asked) return
  asked = true
  process.on('message', onMasterMessage)
  process.send?.({ t: 'dirty-roster?' } satisfies RosterRequest)
}

/** Waits for the next roster; fails with `timeoutError()` if `deadline` passes first, or with the signal's abort. */
function nextRoster(deadline: number, signal: AbortSignal | undefined, timeoutError: () => DirtyError) {
  return new Promise<RosterMessage>((resolve, reject) => {
    const wake = () => {
      cleanup()
      resolve(roster as RosterMessage)
    }
    const timer = Number.isFinite(deadline)
      ? setTimeout(
          () => {
            cleanup()
            reject(timeoutError())
          },
          Math.max(0, deadline - performance.now()),
        )
      : undefined
    const aborted = () => {
      cleanup()
      reject(abortError(signal))
    }
    const cleanup = () => {
      rosterWaiters.delete(wake)
      clearTimeout(timer)
      signal?.removeEventListener('abort', aborted)
    }
    rosterWaiters.add(wake)
    signal?.addEventListener('abort', aborted, { once: true })
  })
}

const abortError = (signal: AbortSignal | undefined) =>
  new DirtyError('DIRTY_ABORTED', 'the dirty call was aborted', { cause: signal?.reason })

function connect(entry: RosterEntry): Connection {
  const existing = connections.get(entry.id)
  if (existing) return existing
  const socket = createConnection(entry.socket)
  const pending = new Map<number, Pending>()
  const connection: Connection = { socket, pending, abandoned: new Set() }
  connections.set(entry.id, connection)
  socket.on(
    'data',
    frameReader((message) => {
      const answer = message as DirtyReply
      if (connection.abandoned.delete(answer.id)) return wakeWaiters()
      const call = pending.get(answer.id)
      if (!call) return
      pending.delete(answer.id)
      if ('value' in answer) call.resolve(answer.value)
      else call.reject(new DirtyError(answer.error.code, answer.error.message, { stack: answer.error.stack }))
    }),
  )
  let why = 'the dirty worker exited during the call'
  socket.on('error', (err) => {
    why = `the dirty worker could not be reached: ${err.message}`
  })
  // The dirty worker died (or was killed for a timeout): its calls, and only its, fail at once.
  socket.on('close', () => {
    connections.delete(entry.id)
    connection.abandoned.clear()
    for (const call of pending.values()) call.reject(new DirtyError('DIRTY_WORKER_LOST', why))
    pending.clear()
  })
  // Only calls in flight keep the process alive, not an idle connection.
  socket.unref()
  return connection
}

function pick(current: RosterMessage, app: string, refused: ReadonlySet<number>): RosterEntry | undefined {
  let best: RosterEntry | undefined
  for (const w of current.workers) {
    if (!w.apps.includes(app) || refused.has(w.id) || (connections.get(w.id)?.abandoned.size ?? 0) > 0) continue
    if (!best || (inFlight.get(w.id) ?? 0) < (inFlight.get(best.id) ?? 0)) best = w
  }
  return best
}

async function callOnce(app: string, method: string, args: unknown[], options: DirtyCallOptions): Promise<unknown> {
  if (!process.send)
    throw new DirtyError('DIRTY_UNAVAILABLE', 'dirty() works in a corral HTTP worker (no master to ask here)')
  const { signal } = options
  if (signal?.aborted) throw abortError(signal)
  askRoster()
  const started = performance.now()
  const seconds = () => options.timeout ?? roster?.timeout ?? 0
  const deadline = () => (seconds() > 0 ? started + seconds() * 1000 : Infinity)
  const timeoutError = () =>
    new DirtyError('DIRTY_TIMEOUT', `dirty call ${app}.${method} timed out after ${seconds()} s`)
  const refused = new Set<number>()
  for (;;) {
    if (roster === undefined) {
      roster = await nextRoster(Math.min(deadline(), started + 30_000), signal, () =>
        roster === undefined ? new DirtyError('DIRTY_UNAVAILABLE', 'the master sent no dirty roster') : timeoutError(),
      )
      continue
    }
    if (roster.draining) throw new DirtyError('DIRTY_DRAINING', 'the dirty pool is stopping')
    if (!roster.apps.includes(app)) throw new DirtyError('DIRTY_NO_WORKER', `no dirty app is named ${app}`)
    const target = pick(roster, app, refused)
    if (!target) {
      // Known, but no carrier ready (starting, replaced after a crash or a timeout): wait for one, within the timeout.
      await nextRoster(deadline(), signal, () =>
        seconds() > 0 && performance.now() >= deadline()
          ? new DirtyError('DIRTY_NO_WORKER', `no dirty worker carrying ${app} became ready in ${seconds()} s`)
          : timeoutError(),
      )
      continue
    }
    try {
      return await send(target, app, method, args, deadline(), signal, timeoutError)
    } catch (err) {
      // A worker draining for a reload refused it before running it: another may take it.
      if (err instanceof DirtyError && err.code === 'DIRTY_DRAINING') {
        refused.add(target.id)
        if (pick(roster, app, refused)) continue
      }
      throw err
    }
  }
}

function send(
  target: RosterEntry,
  app: string,
  method: string,
  args: unknown[],
  deadline: number,
  signal: AbortSignal | undefined,
  timeoutError: () => DirtyError,
): Promise<unknown> {
  const connection = connect(target)
  const id = ++lastId
  inFlight.set(target.id, (inFlight.get(target.id) ?? 0) + 1)
  return new Promise<unknown>((resolve, reject) => {
    let timer: NodeJS.Timeout | undefined
    const settle = () => {
      connection.pending.delete(id)
      if (connection.pending.size === 0) connection.socket.unref()
      inFlight.set(target.id, Math.max(0, (inFlight.get(target.id) ?? 1) - 1))
      if (timer) clearTimeout(timer)
      signal?.removeEventListener('abort', aborted)
    }
    // The dirty worker stops the call (its signal aborts); its answer, if any, is dropped.
    const giveUp = (err: DirtyError) => {
      settle()
      if (!connection.socket.destroyed) {
        connection.abandoned.add(id)
        writeFrame(connection.socket, { id, abort: err.code === 'DIRTY_TIMEOUT' ? 'timeout' : 'aborted' })
      }
      reject(err)
    }
    const aborted = () => giveUp(abortError(signal))
    connection.pending.set(id, {
      resolve: (value) => {
        settle()
        resolve(value)
      },
      reject: (err) => {
        settle()
        reject(err)
      },
    })
    if (deadline !== Infinity)
      timer = setTimeout(() => giveUp(timeoutError()), Math.max(0, deadline - performance.now()))
    signal?.addEventListener('abort', aborted, { once: true })
    connection.socket.ref()
    try {
      writeFrame(connection.socket, { id, app, method, args })
    } catch (err) {
      // Arguments structured clone cannot carry.
      settle()
      reject(new DirtyError('DIRTY_APP_ERROR', `the arguments could not be sent: ${(err as Error).message}`))
    }
  })
}

/**
 * A dirty app by the NAME given to --dirty-app. With the module's type,
 * `dirty<typeof import('./model.ts').default>('model')`, calls are typed.
 */
export function dirty<T = unknown>(name: string, options: DirtyCallOptions = {}): DirtyApp<T> {
  const app: UntypedApp = { call: (method, ...args) => callOnce(name, method, args, options) }
  return app as DirtyApp<T>
}
