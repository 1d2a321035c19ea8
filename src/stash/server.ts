// The stash's server, run by the master (spec/stash.md): a unix socket in a
// private directory, named to the workers by $CORRAL_STASH_SOCKET. Each
// request is answered from the store in the tick it arrives, so incr is
// atomic without locks. On USR2 the new master, seeing its parent's socket
// in that variable, takes the contents over before its workers start; from
// then on the old master forwards every byte its own workers send to the
// new master's socket, so both generations see one stash until the old one
// is gone.
import { chownSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs'
import { connect, createServer, type Server, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { monitorEventLoopDelay, performance } from 'node:perf_hooks'
import { deserialize, serialize } from 'node:v8'
import type { Logger } from '../logging/log.ts'
import { createStore, StashRefusal, type SnapshotEntry } from './store.ts'
import {
  decodeRequest,
  encodeAnswer,
  encodeJsonAnswer,
  encodeNumberAnswer,
  encodeRequest,
  frameReader,
  KIND,
  OP,
  type Request,
  STASH_SOCKET_ENV,
} from './wire.ts'

export interface StashOptions {
  maxBytes: number
  /** -u/--user, -g/--group: the workers' identity, which must be able to reach the socket. */
  owner?: { uid?: number; gid?: number }
  log: Logger
}

export interface Stash {
  /** Where workers reach it. */
  readonly path: string
  /** Closes the socket: calls in flight and later ones fail with STASH_UNREACHABLE. */
  stop(): Promise<void>
}

/** How often expired entries are freed even if nobody reads them. */
const SWEEP_MS = 5000
const STASH_DIR_PREFIX = 'corral-stash-'

/**
 * A master that was killed (SIGKILL, a crash) leaves its socket's directory
 * behind. At start, this user's directories whose socket nobody answers on are
 * removed: in the background, and only those, so a live master's (even one in
 * another PID namespace sharing the temp directory) is never touched.
 */
export function removeStaleSockets(): void {
  let names: string[]
  try {
    names = readdirSync(tmpdir()).filter((n) => n.startsWith(STASH_DIR_PREFIX))
  } catch {
    return
  }
  for (const name of names) {
    const dir = join(tmpdir(), name)
    let made: number
    try {
      const stat = statSync(dir)
      // Root's masters give theirs to the workers' user (-u): root may remove any.
      if (process.getuid?.() !== 0 && stat.uid !== process.getuid?.()) continue
      made = stat.mtimeMs
    } catch {
      continue
    }
    const probe = connect(join(dir, 'stash.sock'))
    probe.unref()
    probe.on('connect', () => probe.destroy())
    probe.on('error', (err: NodeJS.ErrnoException) => {
      // No socket yet may be a master starting now: only a directory a minute old is given up on.
      const dead = err.code === 'ECONNREFUSED' || (err.code === 'ENOENT' && Date.now() - made > 60_000)
      if (dead) rmSync(dir, { recursive: true, force: true })
    })
  }
}

/** How long a new master waits for its parent's contents before starting empty. */
const TAKE_OVER_MS = 10_000

export async function startStash({ maxBytes, owner, log }: StashOptions): Promise<Stash> {
  const store = createStore({ maxBytes, now: () => performance.now() })
  // The master's event-loop delay, sampled every 5 ms from the first stats call on: a
  // master nobody asks keeps its loop quiet between its own ticks.
  const lag = monitorEventLoopDelay({ resolution: 5 })
  let lagMeasured = false
  const previous = process.env[STASH_SOCKET_ENV]
  removeStaleSockets()
  const dir = mkdtempSync(join(tmpdir(), STASH_DIR_PREFIX))
  const path = join(dir, 'stash.sock')
  // Set once the old master has handed its contents over: its workers' connections go there from then on.
  let forwardTo: string | undefined
  // Requests wait until a previous master's contents are in.
  let loaded = previous === undefined
  const waiting: Socket[] = []
  const connections = new Set<Socket>()

  const server: Server = createServer((socket) => {
    connections.add(socket)
    socket.on('close', () => connections.delete(socket))
    socket.on('error', () => socket.destroy())
    if (loaded) serve(socket)
    else {
      socket.pause()
      waiting.push(socket)
    }
  })

  function serve(socket: Socket): void {
    let answers: Buffer[] = []
    const reader = frameReader((frame) => {
      answers.push(answer(frame))
    })
    const onData = (chunk: Buffer) => {
      if (forwardTo !== undefined) return forward(socket, reader.rest(), chunk, onData)
      try {
        reader.take(chunk)
      } catch (err) {
        // Only a client that is not corral's sends what does not parse: it loses its connection, nothing else.
        log.warning(`stash: dropped a connection that sent a malformed request (${(err as Error).message})`)
        socket.destroy()
        return
      }
      if (answers.length > 0) {
        socket.write(answers.length === 1 ? (answers[0] as Buffer) : Buffer.concat(answers))
        answers = []
      }
    }
    socket.on('data', onData)
    socket.resume()
  }

  function answer(frame: Buffer): Buffer {
    const request = decodeRequest(frame)
    try {
      return run(request)
    } catch (err) {
      const code = err instanceof StashRefusal ? err.code : 'STASH_BAD_CALL'
      return encodeJsonAnswer(request.id, KIND.error, { code, message: (err as Error).message })
    }
  }

  function run({ id, op, num, table, key, payload }: Request): Buffer {
    const yesNo = (b: boolean) => encodeAnswer(id, b ? KIND.true : KIND.false)
    switch (op) {
      case OP.get: {
        const value = store.get(table, key)
        return value ? encodeAnswer(id, KIND.value, value) : encodeAnswer(id, KIND.none)
      }
      case OP.set:
        // A copy: the payload is a view of the whole chunk it came in.
        store.set(table, key, Buffer.from(payload), Number.isNaN(num) ? undefined : num)
        return encodeAnswer(id, KIND.none)
      case OP.has:
        return yesNo(store.has(table, key))
      case OP.delete:
        return yesNo(store.delete(table, key))
      case OP.incr:
        return encodeNumberAnswer(id, store.incr(table, key, num))
      case OP.keys:
        return encodeJsonAnswer(id, KIND.json, store.keys(table, key))
      case OP.clear:
        store.clear(table)
        return encodeAnswer(id, KIND.none)
      case OP.stats: {
        if (!lagMeasured) {
          lag.enable()
          lagMeasured = true
        }
        const lagMs = (ns: number) => Math.round(ns / 1e4) / 100
        const stats = {
          ...store.stats(),
          lagP50Ms: lagMs(lag.percentile(50)),
          lagP99Ms: lagMs(lag.percentile(99)),
          lagMaxMs: lagMs(lag.max),
        }
        if (num === 1) lag.reset()
        return encodeJsonAnswer(id, KIND.json, stats)
      }
      case OP.takeOver:
        return handOver(id, num, key)
      default:
        throw new StashRefusal('STASH_BAD_CALL', `unknown stash operation ${op}`)
    }
  }

  // The old master's half of a USR2: the contents as they are in this tick, then every byte after goes to the new master.
  function handOver(id: number, ppid: number, to: string): Buffer {
    if (ppid !== process.pid) {
      throw new StashRefusal('STASH_BAD_CALL', 'takeOver: only a master this master started may take its stash')
    }
    const entries = store.snapshot()
    forwardTo = to
    log.info(`stash: handed ${entries.length} entries over to the new master`)
    return encodeAnswer(id, KIND.value, serialize(entries))
  }

  function forward(socket: Socket, rest: Buffer | undefined, chunk: Buffer, onData: (chunk: Buffer) => void): void {
    socket.off('data', onData)
    socket.pause()
    const upstream = connect(forwardTo as string)
    upstream.once('connect', () => {
      upstream.write(rest ? Buffer.concat([rest, chunk]) : chunk)
      socket.pipe(upstream)
      upstream.pipe(socket)
      upstream.on('close', () => socket.destroy())
      socket.on('close', () => upstream.destroy())
    })
    upstream.on('error', (err: NodeJS.ErrnoException) => {
      if (upstream.connecting || upstream.bytesWritten === 0) {
        if (forwardTo !== undefined && (err.code === 'ENOENT' || err.code === 'ECONNREFUSED')) {
          // The new master gone (a rollback): this master serves its own copy again, as it was at the
          // hand-over, starting with what this connection sent (nothing of it reached the new master).
          forwardTo = undefined
          log.warning("stash: the new master's stash is gone; serving this master's copy, as it was at the hand-over")
        }
        if (forwardTo === undefined) {
          socket.on('data', onData)
          socket.resume()
          onData(chunk)
          return
        }
      }
      socket.destroy()
    })
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(path, () => {
      server.off('error', reject)
      resolve()
    })
  })
  if (owner?.uid !== undefined || owner?.gid !== undefined) {
    for (const p of [dir, path]) chownSync(p, owner.uid ?? -1, owner.gid ?? -1)
  }
  const sweeper = setInterval(() => store.sweep(), SWEEP_MS)
  sweeper.unref()

  if (previous !== undefined) {
    try {
      const entries = await takeOver(previous, path)
      const { kept, dropped } = store.restore(entries)
      log.info(
        `stash: took over ${kept} entries from the previous master${dropped > 0 ? ` (${dropped} left out: past --stash-max-bytes ${maxBytes})` : ''}`,
      )
    } catch (err) {
      log.warning(`stash: could not take over the previous master's stash (${(err as Error).message}); starting empty`)
    }
  }
  loaded = true
  for (const socket of waiting.splice(0)) if (!socket.destroyed) serve(socket)
  // Workers, and a new master started by USR2, inherit the master's environment.
  process.env[STASH_SOCKET_ENV] = path

  return {
    path,
    stop() {
      clearInterval(sweeper)
      lag.disable()
      return new Promise<void>((resolve) => {
        server.close(() => {
          rmSync(dir, { recursive: true, force: true })
          resolve()
        })
        for (const socket of connections) socket.destroy()
      })
    },
  }
}

/** The new master's half: asks the old master's stash for its contents, naming where to forward to. */
function takeOver(from: string, to: string): Promise<SnapshotEntry[]> {
  return new Promise((resolve, reject) => {
    const socket = connect(from)
    const timer = setTimeout(() => {
      socket.destroy()
      reject(new Error(`no answer from ${from} in ${TAKE_OVER_MS / 1000} s`))
    }, TAKE_OVER_MS)
    const done = (err: Error | undefined, entries?: SnapshotEntry[]) => {
      clearTimeout(timer)
      socket.destroy()
      if (err) reject(err)
      else resolve(entries ?? [])
    }
    const reader = frameReader((frame) => {
      if (frame[4] === KIND.value) done(undefined, deserialize(frame.subarray(5)) as SnapshotEntry[])
      else
        done(
          new Error(frame[4] === KIND.error ? (JSON.parse(frame.toString('utf8', 5)) as Error).message : 'no contents'),
        )
    })
    socket.on('data', (chunk: Buffer) => reader.take(chunk))
    socket.on('error', (err) => done(err))
    socket.on('close', () => done(new Error(`${from} closed the connection`)))
    socket.write(encodeRequest(0, OP.takeOver, '', to, process.ppid))
  })
}
