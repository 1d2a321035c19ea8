// The stash's store, pure (src/stash/store.ts), on a hand-turned clock; and
// its server and client in this process, over a real unix socket.
import { connect } from 'node:net'
import { serialize } from 'node:v8'
import { afterEach, describe, expect, it } from 'vitest'
import { stashClient } from '../src/stash/client.ts'
import { startStash } from '../src/stash/server.ts'
import { createStore, globMatcher, StashRefusal } from '../src/stash/store.ts'
import { decodeRequest, encodeRequest, frameReader, OP, STASH_SOCKET_ENV } from '../src/stash/wire.ts'
import { createLogger } from '../src/logging/log.ts'

function clocked(maxBytes = 1 << 20) {
  let now = 1000
  const store = createStore({ maxBytes, now: () => now })
  return {
    store,
    advance: (ms: number) => {
      now += ms
    },
  }
}
const v = (value: unknown) => serialize(value)

describe('the store', () => {
  it('an entry with a TTL is there until its time, then gone from get, has, keys and the byte count', () => {
    const { store, advance } = clocked()
    store.set('t', 'a', v('x'), 500)
    store.set('t', 'b', v('y'), undefined)
    advance(499)
    expect(store.has('t', 'a')).toBe(true)
    expect(store.keys('t', '*').sort()).toEqual(['a', 'b'])
    advance(1)
    expect(store.get('t', 'a')).toBeUndefined()
    expect(store.has('t', 'a')).toBe(false)
    expect(store.keys('t', '*')).toEqual(['b'])
    expect(store.stats().bytes).toBe(1 + v('y').length)
  })

  it('sweep frees expired entries nobody reads', () => {
    const { store, advance } = clocked()
    store.set('t', 'a', v('x'), 10)
    advance(10)
    expect(store.stats().keys).toBe(1)
    store.sweep()
    expect(store.stats()).toMatchObject({ keys: 0, bytes: 0, tables: 0 })
  })

  it('keys(glob): *, ?, [set], [!set] and \\ escapes; tables are apart', () => {
    const { store } = clocked()
    for (const k of ['user:1', 'user:22', 'user:a', 'session:1', 'a*b', 'axb']) store.set('t', k, v(1), undefined)
    store.set('other', 'user:9', v(1), undefined)
    const keys = (g: string) => store.keys('t', g).sort()
    expect(keys('user:*')).toEqual(['user:1', 'user:22', 'user:a'])
    expect(keys('user:?')).toEqual(['user:1', 'user:a'])
    expect(keys('user:[0-9]*')).toEqual(['user:1', 'user:22'])
    expect(keys('user:[!0-9]')).toEqual(['user:a'])
    expect(keys('a\\*b')).toEqual(['a*b'])
    expect(keys('a*b')).toEqual(['a*b', 'axb'])
    expect(keys('*:1')).toEqual(['session:1', 'user:1'])
    expect(globMatcher('a.c')('abc')).toBe(false)
  })

  it('incr counts from 0, keeps the TTL, refuses a value that is not a number and leaves it', () => {
    const { store, advance } = clocked()
    expect(store.incr('t', 'n', 1)).toBe(1)
    expect(store.incr('t', 'n', 41)).toBe(42)
    expect(store.incr('t', 'n', -2.5)).toBe(39.5)
    store.set('t', 'w', v(5), 100)
    expect(store.incr('t', 'w', 1)).toBe(6)
    advance(100)
    expect(store.has('t', 'w')).toBe(false)
    // A counter reads back as the number it is, and moves to a new master as one.
    expect(store.get('t', 'n')).toEqual(v(39.5))
    const moved = clocked()
    moved.store.restore(store.snapshot())
    expect(moved.store.incr('t', 'n', 0.5)).toBe(40)
    store.set('t', 's', v('text'), undefined)
    expect(() => store.incr('t', 's', 1)).toThrow(/holds a string, not a number/)
    expect(store.get('t', 's')).toEqual(v('text'))
  })

  it('a write past the bound is refused with STASH_FULL and changes nothing; an overwrite counts only its growth', () => {
    const { store, advance } = clocked(100)
    store.set('t', 'a', Buffer.alloc(60), undefined)
    const before = store.stats().bytes
    let refusal: unknown
    try {
      store.set('t', 'b', Buffer.alloc(60), undefined)
    } catch (err) {
      refusal = err
    }
    expect(refusal).toBeInstanceOf(StashRefusal)
    expect((refusal as StashRefusal).code).toBe('STASH_FULL')
    expect((refusal as StashRefusal).message).toMatch(/--stash-max-bytes 100/)
    expect(store.stats().bytes).toBe(before)
    expect(store.has('t', 'b')).toBe(false)
    // Replacing a's value by a bigger one fits while the total stays under.
    store.set('t', 'a', Buffer.alloc(90), undefined)
    expect(store.stats().bytes).toBe(91)
    // Expired entries make room before a refusal.
    store.set('t', 'a', Buffer.alloc(90), 5)
    advance(5)
    store.set('t', 'c', Buffer.alloc(90), undefined)
    expect(store.keys('t', '*')).toEqual(['c'])
  })

  it('delete and clear give the bytes back', () => {
    const { store } = clocked()
    store.set('t', 'a', v('x'), undefined)
    store.set('t', 'b', v('y'), undefined)
    store.set('u', 'a', v('z'), undefined)
    expect(store.delete('t', 'a')).toBe(true)
    expect(store.delete('t', 'a')).toBe(false)
    store.clear('t')
    expect(store.keys('t', '*')).toEqual([])
    expect(store.stats()).toMatchObject({ tables: 1, keys: 1, bytes: 1 + v('z').length })
  })

  it('a snapshot moves entries with the time they have left; a smaller bound leaves some out', () => {
    const { store, advance } = clocked()
    store.set('t', 'a', v('x'), 1000)
    store.set('t', 'b', Buffer.alloc(50), undefined)
    advance(400)
    const entries = store.snapshot()
    const next = clocked(40)
    expect(next.store.restore(entries)).toEqual({ kept: 1, dropped: 1 })
    next.advance(599)
    expect(next.store.has('t', 'a')).toBe(true)
    next.advance(1)
    expect(next.store.has('t', 'a')).toBe(false)
  })
})

describe('the server and client, in this process', () => {
  const stops: (() => Promise<void>)[] = []
  afterEach(async () => {
    for (const stop of stops.splice(0)) await stop()
    delete process.env[STASH_SOCKET_ENV]
  })
  const log = createLogger({ level: 'critical' })

  it('values round-trip by structured clone; bad calls reject with one clear line', async () => {
    const stash = await startStash({ maxBytes: 1000, log })
    stops.push(() => stash.stop())
    const client = stashClient(stash.path)
    const t = client.table('things')
    const value = { when: new Date(0), tags: new Set(['a']), bytes: new Uint8Array([1, 2]), m: new Map([[1, 'x']]) }
    await t.set('v', value)
    expect(await t.get('v')).toEqual(value)
    expect(await t.get('missing')).toBeUndefined()
    expect(await t.incr('n')).toBe(1)
    expect(await t.incr('n', 9)).toBe(10)
    await expect(t.set('f', () => 1)).rejects.toThrow(/corral stash: things.set\(f\): the value cannot be stored/)
    await expect(t.get(7 as unknown as string)).rejects.toThrow(/the key must be a string, not number 7/)
    expect(() => client.table(3 as unknown as string)).toThrow(/the name must be a non-empty string, not number 3/)
    await expect(t.set('x', 1, { ttl: -1 })).rejects.toThrow(/ttl must be a number of seconds above 0/)
    await expect(t.incr('v')).rejects.toMatchObject({ code: 'STASH_NOT_A_NUMBER' })
    await expect(t.set('big', 'x'.repeat(2000))).rejects.toMatchObject({ code: 'STASH_FULL' })
    // Nothing lost: what was there still is, and the connection still serves.
    expect(await t.incr('n')).toBe(11)
    client.close()
  })

  it('a connection that sends a malformed frame is closed; the others keep being served', async () => {
    const stash = await startStash({ maxBytes: 1000, log })
    stops.push(() => stash.stop())
    const client = stashClient(stash.path)
    await client.table('t').set('a', 1)
    const raw = connect(stash.path)
    // A frame whose table length points past its end.
    const bad = Buffer.alloc(4 + 21)
    bad.writeUInt32LE(21, 0)
    bad.writeUInt32LE(1000, 17)
    raw.write(bad)
    await new Promise((resolve) => raw.on('close', resolve))
    expect(await client.table('t').get('a')).toBe(1)
    client.close()
  })

  it('concurrent incr from many clients reach the exact total', async () => {
    const stash = await startStash({ maxBytes: 1000, log })
    stops.push(() => stash.stop())
    const clients = Array.from({ length: 4 }, () => stashClient(stash.path))
    await Promise.all(clients.map((c) => Promise.all(Array.from({ length: 250 }, () => c.table('c').incr('hits')))))
    expect(await clients[0]!.table('c').get('hits')).toBe(1000)
    for (const c of clients) c.close()
  })

  it('a stopped stash fails calls in flight and later ones with STASH_UNREACHABLE, never a hang', async () => {
    const stash = await startStash({ maxBytes: 1000, log })
    const client = stashClient(stash.path)
    const t = client.table('t')
    await t.set('a', 1)
    await stash.stop()
    await expect(t.get('a')).rejects.toMatchObject({ code: 'STASH_UNREACHABLE' })
    await expect(t.get('a')).rejects.toThrow(/the master's stash is not there/)
  })

  it('a new stash started with an old one in $CORRAL_STASH_SOCKET takes over its contents and the old one forwards', async () => {
    const old = await startStash({ maxBytes: 1000, log })
    stops.push(() => old.stop())
    const oldClient = stashClient(old.path)
    await oldClient.table('t').set('a', 'kept')
    await oldClient.table('t').incr('n', 5)
    // The take-over is for a master's own child; here the "new master" is this process, so its parent pid is faked.
    const ppid = Object.getOwnPropertyDescriptor(process, 'ppid')
    Object.defineProperty(process, 'ppid', { value: process.pid, configurable: true })
    let fresh: Awaited<ReturnType<typeof startStash>>
    try {
      fresh = await startStash({ maxBytes: 1000, log })
    } finally {
      if (ppid) Object.defineProperty(process, 'ppid', ppid)
    }
    stops.push(() => fresh.stop())
    expect(process.env[STASH_SOCKET_ENV]).toBe(fresh.path)
    const freshClient = stashClient(fresh.path)
    expect(await freshClient.table('t').get('a')).toBe('kept')
    // Writes through the old socket land in the new stash: one truth for both generations.
    expect(await oldClient.table('t').incr('n')).toBe(6)
    expect(await freshClient.table('t').incr('n')).toBe(7)
    oldClient.close()
    freshClient.close()
  })

  it('when the new stash dies (a rollback), the old one serves its copy again, from the next call on', async () => {
    const old = await startStash({ maxBytes: 1000, log })
    stops.push(() => old.stop())
    const oldClient = stashClient(old.path)
    await oldClient.table('t').incr('n', 5)
    const ppid = Object.getOwnPropertyDescriptor(process, 'ppid')
    Object.defineProperty(process, 'ppid', { value: process.pid, configurable: true })
    let fresh: Awaited<ReturnType<typeof startStash>>
    try {
      fresh = await startStash({ maxBytes: 1000, log })
    } finally {
      if (ppid) Object.defineProperty(process, 'ppid', ppid)
    }
    await fresh.stop()
    // Nothing was forwarded before the new stash went: no call is lost to the switch back.
    expect(await oldClient.table('t').incr('n')).toBe(6)
    expect(await oldClient.table('t').incr('n')).toBe(7)
    oldClient.close()
  })

  it('frames split anywhere, or many in one chunk, come out whole and in order; a large value round-trips', async () => {
    const frames = [encodeRequest(1, OP.get, 't', 'a'), encodeRequest(2, OP.set, 't', 'b', 5, Buffer.alloc(3000, 7))]
    const bytes = Buffer.concat([...frames, ...frames])
    for (const step of [1, 3, 4, 5, 1000, bytes.length]) {
      const seen: number[] = []
      const reader = frameReader((f) => seen.push(decodeRequest(f).id))
      for (let at = 0; at < bytes.length; at += step) reader.take(bytes.subarray(at, at + step))
      expect(seen).toEqual([1, 2, 1, 2])
      expect(reader.rest()).toBeUndefined()
    }
    const stash = await startStash({ maxBytes: 64 << 20, log })
    stops.push(() => stash.stop())
    const client = stashClient(stash.path)
    const big = new Uint8Array(16 << 20).map((_, i) => i % 251)
    await client.table('t').set('big', big)
    expect(await client.table('t').get('big')).toEqual(big)
    client.close()
  })
})
