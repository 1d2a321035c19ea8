// The stash's wire, between a worker's client (src/stash/client.ts) and the
// master's server (src/stash/server.ts), over a unix socket. Binary, so
// that neither side parses or builds JSON for the common calls (JSON heads
// cost the master a third of its time per call):
//   request  u32 length of the rest · u32 id · u8 op · f64 number · u32 table
//            bytes · table · u32 key bytes · key · payload (a value's node:v8 bytes)
//   answer   u32 length of the rest · u32 id · u8 kind · payload
// The number is the TTL in ms for set (NaN: none), the step for incr, the
// asking master's parent pid for takeOver, 1 to reset for stats. The key is
// the glob for keys and the new master's socket for takeOver. Answers carry
// the request's id, so they may come in any order.

export const OP = { get: 1, set: 2, delete: 3, has: 4, keys: 5, incr: 6, clear: 7, stats: 8, takeOver: 9 } as const
export type Op = (typeof OP)[keyof typeof OP]

/** What an answer's payload is. */
export const KIND = {
  /** Nothing: a missing key's get, a set, a clear. */
  none: 0,
  /** node:v8 bytes: a value, or takeOver's snapshot. */
  value: 1,
  true: 2,
  false: 3,
  /** A float64: incr's result. */
  number: 4,
  /** JSON: keys, stats. */
  json: 5,
  /** JSON { code, message }: a refusal. */
  error: 6,
} as const

export interface Request {
  id: number
  op: Op
  num: number
  table: string
  key: string
  payload: Buffer
}

export function encodeRequest(
  id: number,
  op: Op,
  table: string,
  key: string,
  num = Number.NaN,
  payload?: Uint8Array,
): Buffer {
  const tableBytes = Buffer.byteLength(table)
  const keyBytes = Buffer.byteLength(key)
  const size = 4 + 4 + 1 + 8 + 4 + tableBytes + 4 + keyBytes + (payload?.length ?? 0)
  const frame = Buffer.allocUnsafe(size)
  frame.writeUInt32LE(size - 4, 0)
  frame.writeUInt32LE(id, 4)
  frame[8] = op
  frame.writeDoubleLE(num, 9)
  frame.writeUInt32LE(tableBytes, 17)
  frame.write(table, 21, tableBytes, 'utf8')
  frame.writeUInt32LE(keyBytes, 21 + tableBytes)
  frame.write(key, 25 + tableBytes, keyBytes, 'utf8')
  if (payload) frame.set(payload, 25 + tableBytes + keyBytes)
  return frame
}

/** A request's fields; throws on a frame too short for what it says it holds. */
export function decodeRequest(frame: Buffer): Request {
  const tableBytes = frame.readUInt32LE(13)
  const keyAt = 17 + tableBytes
  const keyBytes = frame.readUInt32LE(keyAt)
  if (keyAt + 4 + keyBytes > frame.length) throw new Error('a request shorter than its lengths say')
  return {
    id: frame.readUInt32LE(0),
    op: frame[4] as Op,
    num: frame.readDoubleLE(5),
    table: frame.toString('utf8', 17, keyAt),
    key: frame.toString('utf8', keyAt + 4, keyAt + 4 + keyBytes),
    payload: frame.subarray(keyAt + 4 + keyBytes),
  }
}

export function encodeAnswer(id: number, kind: number, payload?: Uint8Array): Buffer {
  const frame = Buffer.allocUnsafe(9 + (payload?.length ?? 0))
  frame.writeUInt32LE(frame.length - 4, 0)
  frame.writeUInt32LE(id, 4)
  frame[8] = kind
  if (payload) frame.set(payload, 9)
  return frame
}

export function encodeNumberAnswer(id: number, n: number): Buffer {
  const frame = Buffer.allocUnsafe(17)
  frame.writeUInt32LE(13, 0)
  frame.writeUInt32LE(id, 4)
  frame[8] = KIND.number
  frame.writeDoubleLE(n, 9)
  return frame
}

export const encodeJsonAnswer = (id: number, kind: typeof KIND.json | typeof KIND.error, value: unknown) =>
  encodeAnswer(id, kind, Buffer.from(JSON.stringify(value)))

/**
 * Splits a byte stream into frames (each without its length); `take` is fed
 * each chunk. Chunks are joined once a whole frame is there, not as they
 * come: a large value arriving in many chunks is copied once.
 */
export function frameReader(frame: (frame: Buffer) => void) {
  let chunks: Buffer[] = []
  let buffered = 0
  // Bytes needed before anything can be parsed: a length, then the frame it announces.
  let need = 4
  return {
    take(chunk: Buffer): void {
      chunks.push(chunk)
      buffered += chunk.length
      if (buffered < need) return
      const buf = chunks.length === 1 ? chunk : Buffer.concat(chunks, buffered)
      chunks = []
      buffered = 0
      need = 4
      let at = 0
      while (buf.length - at >= 4) {
        const rest = buf.readUInt32LE(at)
        if (buf.length - at - 4 < rest) {
          need = 4 + rest
          break
        }
        frame(buf.subarray(at + 4, at + 4 + rest))
        at += 4 + rest
      }
      if (at < buf.length) {
        chunks = [buf.subarray(at)]
        buffered = buf.length - at
      }
    },
    /** Bytes received but not yet a whole frame (handed on when a connection is forwarded). */
    rest: (): Buffer | undefined => (buffered > 0 ? Buffer.concat(chunks, buffered) : undefined),
  }
}

/** The variable naming the stash's socket, set by the master for its workers (and for a new master on USR2). */
export const STASH_SOCKET_ENV = 'CORRAL_STASH_SOCKET'
