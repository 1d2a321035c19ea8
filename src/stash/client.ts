// A worker's side of the stash (spec/stash.md): one connection to the
// master's stash socket, opened on the first call, many requests in flight
// on it. Values go as node:v8 bytes, so anything structured clone takes
// (Maps, Dates, typed arrays, nested objects) comes back as it went.
// Loaded lazily by `stash` in src/index.ts: a worker that never calls the
// stash never loads this.
import { connect, type Socket } from 'node:net'
import { deserialize, serialize } from 'node:v8'
import { encodeRequest, frameReader, KIND, OP, type Op, STASH_SOCKET_ENV } from './wire.ts'

/** Which kind of failure a StashError is (spec/stash.md, Errors). */
export type StashErrorCode = 'STASH_FULL' | 'STASH_NOT_A_NUMBER' | 'STASH_BAD_CALL' | 'STASH_UNREACHABLE'

/** What a stash call rejects with: `code` says which kind, the message says what happened in one line. */
export class StashError extends Error {
  readonly code: StashErrorCode
  constructor(code: StashErrorCode, message: string) {
    super(`corral stash: ${message}`)
    this.name = 'StashError'
    this.code = code
  }
}

export interface SetOptions {
  /** Seconds the entry lives (fractions allowed); without it, until deleted or cleared. */
  ttl?: number
}

export interface StashTable {
  readonly name: string
  /** The value, or undefined when the key is missing or expired. */
  get<T = unknown>(key: string): Promise<T | undefined>
  set(key: string, value: unknown, options?: SetOptions): Promise<void>
  /** Whether the key was there. */
  delete(key: string): Promise<boolean>
  has(key: string): Promise<boolean>
  /** The keys matching `glob` (`*`, `?`, `[a-z]`; `\` escapes), in no set order. */
  keys(glob?: string): Promise<string[]>
  clear(): Promise<void>
  /** Adds `by` to the number at `key` (0 when missing) and returns the result, atomically across all workers. */
  incr(key: string, by?: number): Promise<number>
}

export interface StashStats {
  tables: number
  keys: number
  /** Keys' and serialized values' bytes, against --stash-max-bytes. */
  bytes: number
  maxBytes: number
  /** The master's event-loop delay in ms, since the last reset (measured from the first stats call on). */
  lagP50Ms: number
  lagP99Ms: number
  lagMaxMs: number
}

interface Pending {
  resolve: (result: unknown) => void
  reject: (err: StashError) => void
}

/** A connection to one stash socket. */
export function stashClient(path = process.env[STASH_SOCKET_ENV]) {
  let socket: Socket | undefined
  let nextId = 1
  const pending = new Map<number, Pending>()
  let outgoing: Buffer[] = []

  function connection(): Socket {
    if (socket && !socket.destroyed) return socket
    if (path === undefined) {
      throw new StashError(
        'STASH_UNREACHABLE',
        `no stash here: $${STASH_SOCKET_ENV} is unset (run the app under corral)`,
      )
    }
    const s = connect(path)
    socket = s
    const reader = frameReader((frame) => {
      const id = frame.readUInt32LE(0)
      const p = pending.get(id)
      if (!p) return
      pending.delete(id)
      if (pending.size === 0) s.unref()
      const kind = frame[4]
      if (kind === KIND.error) {
        const { code, message } = JSON.parse(frame.toString('utf8', 5)) as { code: StashErrorCode; message: string }
        p.reject(new StashError(code, message))
      } else p.resolve(decodeResult(kind, frame))
    })
    s.on('data', (chunk: Buffer) => reader.take(chunk))
    s.on('error', (err: NodeJS.ErrnoException) => failAll(s, reason(err)))
    s.on('close', () => failAll(s, CLOSED))
    // A worker waiting on nothing but the stash may still exit.
    s.unref()
    return s
  }

  function flush(): void {
    const frames = outgoing
    outgoing = []
    if (frames.length === 0 || !socket || socket.destroyed) return
    socket.write(frames.length === 1 ? (frames[0] as Buffer) : Buffer.concat(frames))
  }

  function failAll(s: Socket, why: string): void {
    if (socket === s) {
      socket = undefined
      // Their calls are rejected below: not to be sent on a later connection.
      outgoing = []
    }
    s.destroy()
    const err = new StashError('STASH_UNREACHABLE', why)
    for (const [id, p] of pending) {
      pending.delete(id)
      p.reject(err)
    }
  }

  function request(op: Op, table: string, key: string, num?: number, payload?: Uint8Array): Promise<unknown> {
    return new Promise((resolve, reject) => {
      const s = connection()
      const id = nextId
      // Ids wrap within the u32 the wire gives them.
      nextId = nextId === 0xffffffff ? 1 : nextId + 1
      pending.set(id, { resolve, reject })
      // Requests made in one tick go out in one buffer, one write (a corked
      // socket's writev of many small buffers cost more than the copy).
      outgoing.push(encodeRequest(id, op, table, key, num, payload))
      if (outgoing.length === 1) process.nextTick(flush)
      // Keeps the process alive while an answer is due, not longer.
      s.ref()
    })
  }

  function table(name: string): StashTable {
    if (typeof name !== 'string' || name === '') {
      throw new StashError(
        'STASH_BAD_CALL',
        `stash.table(name): the name must be a non-empty string, not ${describe(name)}`,
      )
    }
    const t = name
    const keyed = (op: string, key: unknown): string => {
      if (typeof key !== 'string') {
        throw new StashError('STASH_BAD_CALL', `${t}.${op}(key): the key must be a string, not ${describe(key)}`)
      }
      return key
    }
    return {
      name,
      async get<T>(key: string) {
        return (await request(OP.get, t, keyed('get', key))) as T | undefined
      },
      async set(key, value, options = {}) {
        const k = keyed('set', key)
        const { ttl } = options
        if (ttl !== undefined && !(typeof ttl === 'number' && ttl > 0 && Number.isFinite(ttl))) {
          throw new StashError(
            'STASH_BAD_CALL',
            `${t}.set(${k}): ttl must be a number of seconds above 0, not ${describe(ttl)}`,
          )
        }
        let bytes: Buffer
        try {
          bytes = serialize(value)
        } catch (err) {
          throw new StashError(
            'STASH_BAD_CALL',
            `${t}.set(${k}): the value cannot be stored (${(err as Error).message})`,
          )
        }
        await request(OP.set, t, k, ttl === undefined ? undefined : ttl * 1000, bytes)
      },
      delete: async (key) => (await request(OP.delete, t, keyed('delete', key))) as boolean,
      has: async (key) => (await request(OP.has, t, keyed('has', key))) as boolean,
      async keys(glob = '*') {
        if (typeof glob !== 'string') {
          throw new StashError('STASH_BAD_CALL', `${t}.keys(glob): the glob must be a string, not ${describe(glob)}`)
        }
        return (await request(OP.keys, t, glob)) as string[]
      },
      async clear() {
        await request(OP.clear, t, '')
      },
      async incr(key, by = 1) {
        const k = keyed('incr', key)
        if (typeof by !== 'number' || !Number.isFinite(by)) {
          throw new StashError('STASH_BAD_CALL', `${t}.incr(${k}, by): by must be a finite number, not ${describe(by)}`)
        }
        return (await request(OP.incr, t, k, by)) as number
      },
    }
  }

  return {
    table,
    /** The stash's size and the master's event-loop lag; `reset` starts the lag's histogram afresh. */
    stats: async (options: { reset?: boolean } = {}) =>
      (await request(OP.stats, '', '', options.reset ? 1 : 0)) as StashStats,
    /** Closes the connection; calls in flight fail. */
    close(): void {
      if (socket) failAll(socket, 'the client was closed')
    },
  }
}

function decodeResult(kind: number | undefined, frame: Buffer): unknown {
  switch (kind) {
    case KIND.value:
      return deserialize(frame.subarray(5))
    case KIND.true:
      return true
    case KIND.false:
      return false
    case KIND.number:
      return frame.readDoubleLE(5)
    case KIND.json:
      return JSON.parse(frame.toString('utf8', 5))
    default:
      return undefined
  }
}

const CLOSED = 'the master closed the connection (it is stopping or gone)'

function reason(err: NodeJS.ErrnoException): string {
  if (err.code === 'ECONNRESET' || err.code === 'EPIPE') return CLOSED
  if (err.code === 'ENOENT' || err.code === 'ECONNREFUSED')
    return `the master's stash is not there (${err.code}: it has stopped?)`
  return err.message
}

function describe(value: unknown): string {
  if (value === null) return 'null'
  if (typeof value === 'string') return value === '' ? 'an empty string' : JSON.stringify(value)
  if (typeof value === 'number' || typeof value === 'boolean') return `${typeof value} ${String(value)}`
  return `a ${typeof value}`
}
