// The stash's contents: named tables of keys to serialized values, each with
// an optional expiry, bounded in bytes. Pure and synchronous: the server
// (src/stash/server.ts) owns one and answers each request from it in the
// tick the request arrives, which is what makes incr atomic. Values stay the
// bytes the client serialized (node:v8): the master never deserializes them,
// except a number's on its first incr; from then on the counter is kept as a
// number, so that an incr costs neither a deserialize nor a serialize.
import { deserialize, serialize } from 'node:v8'
import type { StashErrorCode } from './client.ts'

interface Entry {
  /** The serialized value; empty for a counter. */
  value: Buffer
  /** A counter's number (incr keeps it so); serialized only when read. */
  count: number | undefined
  /** On the store's clock, in ms; undefined: never. */
  expiresAt: number | undefined
}

/** A refusal the caller is told about: its code and one line (src/stash/wire.ts). */
export class StashRefusal extends Error {
  readonly code: StashErrorCode
  constructor(code: StashErrorCode, message: string) {
    super(message)
    this.code = code
  }
}

/** One entry as it moves to a new master: the time it has left, not a clock reading (the clocks differ). */
export type SnapshotEntry = [table: string, key: string, value: Uint8Array, ttlMs: number | undefined]

export interface StoreOptions {
  maxBytes: number
  /** Monotonic ms (performance.now in the master; a hand-turned clock in tests). */
  now: () => number
}

/** What a counter counts for against --stash-max-bytes: a serialized double's bytes. */
const COUNTER_BYTES = 10
const NO_BYTES = Buffer.alloc(0)

export function createStore({ maxBytes, now }: StoreOptions) {
  const tables = new Map<string, Map<string, Entry>>()
  // The bytes of every live key (UTF-8) and serialized value: what --stash-max-bytes bounds.
  let bytes = 0
  const sizeOf = (key: string, e: Entry) =>
    Buffer.byteLength(key) + (e.count === undefined ? e.value.length : COUNTER_BYTES)

  function live(table: string, key: string): Entry | undefined {
    const t = tables.get(table)
    const e = t?.get(key)
    if (!t || !e) return undefined
    if (e.expiresAt !== undefined && e.expiresAt <= now()) {
      drop(table, t, key, e)
      return undefined
    }
    return e
  }

  function drop(table: string, t: Map<string, Entry>, key: string, e: Entry): void {
    t.delete(key)
    bytes -= sizeOf(key, e)
    if (t.size === 0) tables.delete(table)
  }

  /** Frees what has expired; run before refusing a write for want of room, and now and then. */
  function sweep(): void {
    const at = now()
    for (const [name, t] of tables) {
      for (const [key, e] of t) if (e.expiresAt !== undefined && e.expiresAt <= at) drop(name, t, key, e)
    }
  }

  function put(table: string, key: string, entry: Entry): void {
    const growth = () => {
      const old = live(table, key)
      return sizeOf(key, entry) - (old ? sizeOf(key, old) : 0)
    }
    if (bytes + growth() > maxBytes) sweep()
    const grows = growth()
    if (bytes + grows > maxBytes) {
      throw new StashRefusal(
        'STASH_FULL',
        `the stash is full: ${table}/${key} needs ${grows} more bytes and ${bytes} of --stash-max-bytes ${maxBytes} are in use (nothing was changed)`,
      )
    }
    let t = tables.get(table)
    if (!t) {
      t = new Map()
      tables.set(table, t)
    }
    t.set(key, entry)
    bytes += grows
  }

  return {
    get(table: string, key: string): Buffer | undefined {
      const e = live(table, key)
      return e && (e.count === undefined ? e.value : serialize(e.count))
    },
    has: (table: string, key: string): boolean => live(table, key) !== undefined,
    /** ttlMs: undefined keeps no expiry. */
    set(table: string, key: string, value: Buffer, ttlMs: number | undefined): void {
      put(table, key, { value, count: undefined, expiresAt: ttlMs === undefined ? undefined : now() + ttlMs })
    },
    delete(table: string, key: string): boolean {
      const t = tables.get(table)
      const e = live(table, key)
      if (!t || !e) return false
      drop(table, t, key, e)
      return true
    },
    /** The new value; a missing key counts from 0, and an existing one keeps its expiry (as Redis's INCRBY). */
    incr(table: string, key: string, by: number): number {
      const e = live(table, key)
      let current = e?.count ?? 0
      if (e && e.count === undefined) {
        const held: unknown = deserialize(e.value)
        if (typeof held !== 'number') {
          throw new StashRefusal('STASH_NOT_A_NUMBER', `incr: ${table}/${key} holds a ${kindOf(held)}, not a number`)
        }
        current = held
      }
      const next = current + by
      put(table, key, { value: NO_BYTES, count: next, expiresAt: e?.expiresAt })
      return next
    },
    keys(table: string, glob: string): string[] {
      const t = tables.get(table)
      if (!t) return []
      const match = globMatcher(glob)
      const at = now()
      const found: string[] = []
      for (const [key, e] of t) if ((e.expiresAt === undefined || e.expiresAt > at) && match(key)) found.push(key)
      return found
    },
    clear(table: string): void {
      const t = tables.get(table)
      if (!t) return
      for (const [key, e] of t) drop(table, t, key, e)
    },
    sweep,
    stats: () => ({ tables: tables.size, keys: countKeys(tables), bytes, maxBytes }),
    snapshot(): SnapshotEntry[] {
      const at = now()
      const out: SnapshotEntry[] = []
      for (const [name, t] of tables) {
        for (const [key, e] of t) {
          if (e.expiresAt !== undefined && e.expiresAt <= at) continue
          const value = e.count === undefined ? e.value : serialize(e.count)
          out.push([name, key, value, e.expiresAt === undefined ? undefined : e.expiresAt - at])
        }
      }
      return out
    },
    /**
     * Takes a previous master's entries. What no longer fits under this
     * master's bound (a smaller --stash-max-bytes) is left out and counted.
     */
    restore(entries: readonly SnapshotEntry[]): { kept: number; dropped: number } {
      let kept = 0
      for (const [table, key, value, ttlMs] of entries) {
        try {
          put(table, key, {
            value: Buffer.from(value.buffer, value.byteOffset, value.length),
            count: undefined,
            expiresAt: ttlMs === undefined ? undefined : now() + ttlMs,
          })
          kept++
        } catch (err) {
          if (!(err instanceof StashRefusal)) throw err
        }
      }
      return { kept, dropped: entries.length - kept }
    },
  }
}

function countKeys(tables: Map<string, Map<string, Entry>>): number {
  let n = 0
  for (const t of tables.values()) n += t.size
  return n
}

function kindOf(value: unknown): string {
  if (value === null) return 'null'
  if (Array.isArray(value)) return 'array'
  return typeof value === 'object' ? (value.constructor?.name ?? 'object') : typeof value
}

/** `*` any run of characters, `?` one character, `[abc]`/`[a-z]` one of them, `\x` x itself; nothing else is special. */
export function globMatcher(glob: string): (key: string) => boolean {
  if (glob === '*') return () => true
  let source = '^'
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i] as string
    if (c === '*') source += '[\\s\\S]*'
    else if (c === '?') source += '[\\s\\S]'
    else if (c === '\\' && i + 1 < glob.length) source += literal(glob[++i] as string)
    else if (c === '[') {
      const close = glob.indexOf(']', i + 2)
      if (close === -1) source += '\\['
      else {
        const body = glob.slice(i + 1, close)
        const negated = body.startsWith('!') || body.startsWith('^')
        const chars = (negated ? body.slice(1) : body).replace(/[\\\]]/g, '\\$&')
        source += `[${negated ? '^' : ''}${chars}]`
        i = close
      }
    } else source += literal(c)
  }
  const re = new RegExp(`${source}$`)
  return (key) => re.test(key)
}

const literal = (c: string) => c.replace(/[.*+?^${}()|[\]\\/-]/g, '\\$&')
