// A dirty worker (spec/dirty.md): loads the apps of its slot once, serves
// calls from HTTP workers on its own unix socket, and tells the master it is
// ready and, each second, how old its oldest call in flight is (the master's
// chart kills it past --dirty-timeout). TERM: finish the calls it has, close
// the apps, exit 0. INT/QUIT: exit now. Stays light: no effect, no config.
import { existsSync } from 'node:fs'
import { createRequire } from 'node:module'
import { createServer, type Socket } from 'node:net'
import { isAbsolute, resolve } from 'node:path'
import { BOOT_ERROR } from '../../machines/exit-codes.ts'
import { DURATION_BUCKETS } from '../protocol/master-worker.ts'
import { importUserModule } from '../process/user-modules.ts'
import type { DirtyWorkerInfo, Hooks } from '../hooks/hooks.ts'
import {
  DIRTY_ENV,
  frameReader,
  writeFrame,
  type DirtyReply,
  type DirtyRequest,
  type DirtyWorkerMessage,
  type DirtyWorkerOptions,
  type CallOutcome,
  type CallStats,
  type WireError,
} from './protocol.ts'

const HEARTBEAT_MS = 1_000

type Methods = Record<string, unknown>

interface Call {
  readonly socket: Socket
  readonly request: Extract<DirtyRequest, { app: string }>
  readonly abort: AbortController
  startedAt: number
  /** Why the caller gave up, if it did. */
  abandoned?: 'timeout' | 'aborted'
}

const options = JSON.parse(process.env[DIRTY_ENV] ?? 'null') as DirtyWorkerOptions | null
const tell = (message: DirtyWorkerMessage) => process.send?.(message)

if (!options || !process.send) {
  process.stderr.write('corral: the dirty worker is started by the corral master, not by hand\n')
  process.exit(1)
}

// The master gone (killed, crashed): nothing is left to serve for.
process.on('disconnect', () => process.exit(0))

const apps = new Map<string, Methods>()
/** Calls started, by socket and id. */
const running = new Map<Socket, Map<number, Call>>()
const queue: Call[] = []
let active = 0
let draining = false
const stats: CallStats = {}
let statsChanged = false

function count(app: string, outcome: CallOutcome, seconds: number): void {
  const entry: CallStats[string] = stats[app] ?? {
    outcomes: {},
    buckets: new Array(DURATION_BUCKETS.length + 1).fill(0),
    sum: 0,
  }
  stats[app] = entry
  entry.outcomes[outcome] = (entry.outcomes[outcome] ?? 0) + 1
  const bound = DURATION_BUCKETS.findIndex((le) => seconds <= le)
  const i = bound < 0 ? DURATION_BUCKETS.length : bound
  entry.buckets[i] = (entry.buckets[i] ?? 0) + 1
  entry.sum += seconds
  statsChanged = true
}

function moduleFile(spec: string): string {
  if (spec.startsWith('.') || isAbsolute(spec)) return resolve(spec)
  // A package name resolves from the app's directory, as its own imports would;
  // a bare path that names no package but a file there (lib/model.ts) is that file, as the APP argument is.
  try {
    return createRequire(resolve('package.json')).resolve(spec)
  } catch (err) {
    if (existsSync(resolve(spec))) return resolve(spec)
    throw err
  }
}

async function load(app: DirtyWorkerOptions['apps'][number]): Promise<Methods> {
  const mod = (await importUserModule(moduleFile(app.module))) as Record<string, unknown>
  const exported = app.exportName !== undefined ? mod[app.exportName] : (mod.default ?? mod)
  if (exported === undefined || exported === null)
    throw new Error(`${app.module} has no export ${app.exportName ?? 'default'}`)
  const instance = typeof exported === 'function' ? new (exported as new () => Methods)() : (exported as Methods)
  if (typeof instance.init === 'function') await (instance.init as () => unknown).call(instance)
  return instance
}

function wireError(err: unknown): WireError {
  if (err instanceof Error) return { code: 'DIRTY_APP_ERROR', name: err.name, message: err.message, stack: err.stack }
  return { code: 'DIRTY_APP_ERROR', message: String(err) }
}

function reply(socket: Socket, message: DirtyReply): void {
  if (socket.destroyed) return
  try {
    writeFrame(socket, message)
  } catch (err) {
    // A result structured clone cannot carry (a function, a socket): the caller hears why.
    if ('value' in message)
      writeFrame(socket, {
        id: message.id,
        error: { code: 'DIRTY_APP_ERROR', message: `the result could not be sent: ${(err as Error).message}` },
      })
  }
}

async function run(call: Call): Promise<void> {
  active++
  call.startedAt = performance.now()
  const { request, socket } = call
  let outcome: CallOutcome = 'ok'
  try {
    const app = apps.get(request.app)
    const method = app?.[request.method]
    if (!app || typeof method !== 'function' || request.method === 'init' || request.method === 'close') {
      outcome = 'no-method'
      reply(socket, {
        id: request.id,
        error: {
          code: app ? 'DIRTY_NO_METHOD' : 'DIRTY_NO_WORKER',
          message: app
            ? `dirty app ${request.app} has no method ${request.method}`
            : `this dirty worker does not carry ${request.app}`,
        },
      })
      return
    }
    const value = await method.apply(app, [...request.args, { signal: call.abort.signal }])
    reply(socket, { id: request.id, value })
  } catch (err) {
    outcome = 'error'
    reply(socket, { id: request.id, error: wireError(err) })
  } finally {
    count(request.app, call.abandoned ?? outcome, (performance.now() - call.startedAt) / 1000)
    running.get(socket)?.delete(request.id)
    active--
    next()
  }
}

function next(): void {
  while (active < (options?.concurrency ?? 1) && queue.length > 0) void run(queue.shift() as Call)
  if (draining && active === 0 && queue.length === 0) void closeAndExit()
}

function serve(socket: Socket): void {
  const calls = new Map<number, Call>()
  running.set(socket, calls)
  socket.on(
    'data',
    frameReader((message) => {
      const request = message as DirtyRequest
      if ('abort' in request) {
        // A call that ignores its signal runs on, and its age still counts towards --dirty-timeout.
        const call = calls.get(request.id)
        if (call) {
          call.abandoned = request.abort
          call.abort.abort(
            new Error(request.abort === 'timeout' ? 'the call timed out' : 'the caller aborted the call'),
          )
        }
        const queued = queue.findIndex((c) => c.socket === socket && c.request.id === request.id)
        if (queued >= 0) {
          queue.splice(queued, 1)
          calls.delete(request.id)
        }
        return
      }
      if (draining) {
        reply(socket, { id: request.id, error: { code: 'DIRTY_DRAINING', message: 'this dirty worker is stopping' } })
        return
      }
      const call: Call = { socket, request, abort: new AbortController(), startedAt: Infinity }
      calls.set(request.id, call)
      queue.push(call)
      next()
    }),
  )
  // The caller went away (its HTTP worker exited): its calls' signals say so, and those still queued
  // are dropped: nobody waits for their answers, and a draining worker would otherwise run them all first.
  socket.on('close', () => {
    for (const call of calls.values()) call.abort.abort(new Error('the caller went away'))
    running.delete(socket)
    for (let i = queue.length - 1; i >= 0; i--) if (queue[i]?.socket === socket) queue.splice(i, 1)
    next()
  })
  socket.on('error', () => {})
}

function oldestCallMs(): number {
  let oldest = Infinity
  for (const calls of running.values()) for (const c of calls.values()) oldest = Math.min(oldest, c.startedAt)
  return oldest === Infinity ? 0 : Math.round(performance.now() - oldest)
}

let closing = false
async function closeAndExit(): Promise<void> {
  if (closing) return
  closing = true
  for (const [name, app] of apps) {
    try {
      if (typeof app.close === 'function') await (app.close as () => unknown).call(app)
    } catch (err) {
      process.stderr.write(`corral: dirty app ${name}: close() failed: ${(err as Error).message}\n`)
    }
  }
  process.exit(0)
}

const server = createServer(serve)

process.on('SIGTERM', () => {
  draining = true
  server.close()
  next()
})
for (const signal of ['SIGINT', 'SIGQUIT'] as const) process.on(signal, () => process.exit(0))

// Beats from the start: an init() that blocks its event loop past --dirty-timeout is a stuck worker too.
setInterval(() => {
  tell({ t: 'hb', oldestCallMs: oldestCallMs(), ...(statsChanged && { calls: stats }) })
  statsChanged = false
}, HEARTBEAT_MS)

for (const app of options.apps) {
  try {
    apps.set(app.name, await load(app))
  } catch (err) {
    const reason = `Dirty app ${app.name} (${app.module}) failed to load: ${(err as Error)?.stack ?? String(err)}`
    process.stderr.write(`${reason}\n`)
    process.send({ t: 'load-failed', reason } satisfies DirtyWorkerMessage, () => process.exit(BOOT_ERROR))
    await new Promise(() => {})
  }
}
// dirtyWorkerInit (spec/hooks.md): the config file's, imported here only when it sets one.
if (options.hooksFile !== undefined) {
  try {
    const config = (await importUserModule(options.hooksFile)) as { default?: Partial<Hooks> }
    const worker: DirtyWorkerInfo = {
      id: options.id,
      pid: process.pid,
      slot: options.slot,
      generation: options.generation,
      apps: options.apps.map((a) => a.name),
    }
    await config.default?.dirtyWorkerInit?.(worker)
  } catch (err) {
    process.stderr.write(`corral: hook dirtyWorkerInit failed: ${(err as Error)?.stack ?? String(err)}\n`)
  }
}
server.listen(options.socket, () => tell({ t: 'ready' }))
