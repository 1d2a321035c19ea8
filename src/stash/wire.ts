// The stash's wire, between a worker's client (src/stash/client.ts) and the
// master's server (src/stash/server.ts), over a unix socket: each frame is
// a u32 length of the rest, a u32 length of a JSON head, the head, and the
// payload (a value's node:v8 bytes, when there is one). Requests carry an id;
// answers come back with it, in any order.
export interface RequestHead {
  /** The caller's id for this request, echoed in the answer. */
  i: number
  o: StashOp
  /** Table and key; a glob (keys), a TTL in ms (set), a step (incr) where the op has one. */
  t?: string
  k?: string
  g?: string
  ttl?: number
  by?: number
  /** takeOver: the asking master's parent pid (the old master checks it is its own). */
  ppid?: number
  /** stats: start the event-loop lag's histogram afresh after reading it. */
  reset?: boolean
}

type StashOp = 'get' | 'set' | 'delete' | 'has' | 'keys' | 'incr' | 'clear' | 'stats' | 'takeOver'

export interface AnswerHead {
  i: number
  /** The result, when it is not a value (has, delete, incr, keys, stats); get sends its value as the payload. */
  r?: unknown
  /** get: 1 when the key was found (the payload is its value). */
  f?: 1
  /** A refusal: its code and message. */
  e?: string
  m?: string
}

export function encodeFrame(head: object, payload?: Uint8Array): Buffer {
  const headBytes = Buffer.from(JSON.stringify(head))
  const payloadLength = payload?.length ?? 0
  const frame = Buffer.allocUnsafe(8 + headBytes.length + payloadLength)
  frame.writeUInt32BE(4 + headBytes.length + payloadLength, 0)
  frame.writeUInt32BE(headBytes.length, 4)
  headBytes.copy(frame, 8)
  if (payload) frame.set(payload, 8 + headBytes.length)
  return frame
}

/** Splits a byte stream into frames; `take` is fed each chunk and calls `frame` for each whole one. */
export function frameReader<Head>(frame: (head: Head, payload: Buffer) => void) {
  let pending: Buffer | undefined
  return {
    take(chunk: Buffer): void {
      let buf = pending ? Buffer.concat([pending, chunk]) : chunk
      pending = undefined
      let at = 0
      while (buf.length - at >= 4) {
        const rest = buf.readUInt32BE(at)
        if (buf.length - at - 4 < rest) break
        const headLength = buf.readUInt32BE(at + 4)
        const head = JSON.parse(buf.toString('utf8', at + 8, at + 8 + headLength)) as Head
        frame(head, buf.subarray(at + 8 + headLength, at + 4 + rest))
        at += 4 + rest
      }
      if (at < buf.length) {
        buf = buf.subarray(at)
        pending = buf
      }
    },
    /** Bytes received but not yet a whole frame (handed on when a connection is forwarded). */
    rest: (): Buffer | undefined => pending,
  }
}

/** The variable naming the stash's socket, set by the master for its workers (and for a new master on USR2). */
export const STASH_SOCKET_ENV = 'CORRAL_STASH_SOCKET'
