// What a worker allows itself (spec/worker-limits.md):
//
// - --keep-alive: node:http's keepAliveTimeout; 0 answers every request with
//   Connection: close.
// - --worker-connections N: a worker holding N connections stops accepting,
//   so the next connection waits in the kernel's accept queue for any worker
//   with room: it is never accepted and then dropped. libuv cannot stop
//   watching a listening socket short of closing its handle, and closing the
//   handle closes the worker's descriptor of the socket. So the worker closes
//   its handle (the socket itself lives on in the master and the other
//   workers), and to resume listens on a fresh copy of the socket that the
//   master sends over the IPC channel (SCM_RIGHTS). Copies are first asked
//   for at the first pause; after that one is kept in hand, so resuming does
//   not wait for the master.
// - --balance-slack S: the same pause, at a lower count: a worker holding
//   as many connections as the other workers' average plus S stops
//   accepting. The others' counts come from the master, which gathers and
//   sends them back (src/master/connection-balance.ts); see balanceCap in
//   accept-gate.ts for the policy, and that file for when a worker pauses
//   and resumes.
// - --max-requests N (+ --max-requests-jitter J) and --max-memory MB: the
//   worker tells the master it is retiring (the master starts its replacement
//   at once and does not count the exit as a crash), then drains exactly as
//   on SIGTERM.
//
// Per request: nothing, or one counter with --max-requests. Per connection
// with --worker-connections or --balance-slack: a step of the accept gate in
// and one out (a small object each; 0.2-0.4 µs for both, measured on a loaded
// machine, against ~50 µs of worker CPU per request) and a shared 'close'
// listener. Balancing adds one small IPC message each way at
// most every BALANCE_REPORT_MS, and one when the worker pauses.
import type { RetireCause } from '../../machines/worker.ts'
import type { IncomingMessage, Server, ServerOptions, ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import type { BalanceMessage, ListenerCopyMessage, LoadMessage } from '../protocol/master-worker.ts'
import { type AcceptEffect, type AcceptEvent, isBalancing, startGate, stepGate } from './accept-gate.ts'

type Handler = (req: IncomingMessage, res: ServerResponse) => void

export interface LimitSettings {
  readonly keepAlive: number
  readonly workerConnections: number
  readonly balanceSlack: number
  readonly maxRequests: number
  readonly maxRequestsJitter: number
  readonly maxMemory: number
}

/** How often RSS is compared with --max-memory. One read of /proc/self/stat: ~10 µs. */
const MEMORY_CHECK_MS = 1000

/**
 * How often a balancing worker tells the master how many connections it
 * holds, when that changed. A pause is told at once.
 */
const BALANCE_REPORT_MS = 100

// ---------------------------------------------------------------------------
// --keep-alive

/** node:http options for --keep-alive. */
export function keepAliveOptions(s: Pick<LimitSettings, 'keepAlive'>): ServerOptions {
  // 0 means no keep-alive (gunicorn); to node:http, 0 would mean no timeout at all.
  return { keepAliveTimeout: s.keepAlive > 0 ? s.keepAlive * 1000 : 5_000 }
}

function closeEveryResponse(_req: IncomingMessage, res: ServerResponse): void {
  res.shouldKeepAlive = false
}

// node:net internals used to stop and resume accepting, as node:cluster uses
// them: the listening handle, and listen() on a handle already in place.
interface ListenHandle {
  close(): void
}
interface PausableServer extends Server {
  _handle: ListenHandle | null
  _listen2(address: string | null, port: number, addressType: number, backlog: number): void
}

export interface WorkerLimitsOptions {
  settings: LimitSettings
  /** The backlog the listeners were put in LISTEN with: every listen(2) sets it anew. */
  backlog: number
  /** Tell the master and start the graceful drain; called at most once. */
  retire(cause: RetireCause, reason: string): void
  log: { info(message: string): void; warning(message: string): void; debug(message: string): void }
}

export interface WorkerLimits {
  /** Wraps the request handler (counts requests for --max-requests). */
  wrap(handler: Handler): Handler
  /**
   * Applies the limits to the servers: the first `inherited` serve the
   * inherited listener fds, in order; any after them have sockets of their
   * own (--reuse-port), which are never paused: closing one would reset the
   * connections queued on it.
   */
  start(servers: Server[], inherited: number): void
  /** The worker is draining or closing: never accept again, drop spare copies, stop the memory check. */
  stop(): void
}

export function createWorkerLimits(options: WorkerLimitsOptions): WorkerLimits {
  const { settings, log } = options
  let retired = false
  let stopped = false
  let memoryTimer: NodeJS.Timeout | undefined
  let connections: ReturnType<typeof limitConnections> | undefined

  const retire = (cause: RetireCause, reason: string) => {
    if (retired || stopped) return
    retired = true
    options.retire(cause, reason)
  }

  return {
    wrap(handler) {
      if (settings.maxRequests <= 0) return handler
      // gunicorn: max_requests + randint(0, jitter), so workers do not all leave at once
      // (node:crypto loaded here, with --max-requests only: a lean start).
      const limit =
        settings.maxRequests + process.getBuiltinModule('node:crypto').randomInt(0, settings.maxRequestsJitter + 1)
      let served = 0
      return (req, res) => {
        handler(req, res)
        if (++served === limit) {
          log.info(`Autorestarting worker after current request (--max-requests: ${limit} requests served)`)
          retire('max-requests', `max requests: ${limit}`)
        }
      }
    },
    start(servers, inherited) {
      if (settings.keepAlive <= 0) for (const server of servers) server.prependListener('request', closeEveryResponse)
      if (settings.workerConnections > 0 || settings.balanceSlack > 0)
        connections = limitConnections(servers as PausableServer[], inherited, options, retire)
      if (settings.maxMemory > 0) {
        const limit = settings.maxMemory * 1024 * 1024
        memoryTimer = setInterval(() => {
          const rss = process.memoryUsage.rss()
          if (rss <= limit) return
          clearInterval(memoryTimer)
          const mb = Math.round(rss / (1024 * 1024))
          log.info(`Worker RSS is ${mb} MB, above --max-memory ${settings.maxMemory} MB; retiring`)
          retire('max-memory', `max memory: RSS ${mb} MB > ${settings.maxMemory} MB`)
        }, MEMORY_CHECK_MS).unref()
      }
    },
    stop() {
      stopped = true
      clearInterval(memoryTimer)
      connections?.stop()
    },
  }
}

/**
 * The shell of the accept gate (accept-gate.ts decides): feeds it the
 * worker's connections, the master's messages and the report timer, and
 * carries out what it says with the listening handles and the IPC channel.
 */
function limitConnections(
  all: PausableServer[],
  inherited: number,
  options: WorkerLimitsOptions,
  retire: (cause: RetireCause, reason: string) => void,
) {
  const { log, backlog, settings } = options
  const servers = all.slice(0, inherited)
  const gateSettings = {
    maxConnections: settings.workerConnections > 0 ? settings.workerConnections : Number.POSITIVE_INFINITY,
    balanceSlack: settings.balanceSlack,
    shared: servers.length,
  }
  /** A copy of each listener, received from the master, not yet listened on. */
  const spares: (ListenHandle | undefined)[] = servers.map(() => undefined)
  /** The copy a 'copy' event is about, while its effects are carried out. */
  let arrived: ListenHandle | undefined

  const carryOut = (effect: AcceptEffect) => {
    switch (effect.type) {
      case 'closeHandles':
        for (const server of servers) {
          const handle = server._handle
          if (!handle) continue
          server._handle = null
          handle.close()
        }
        return
      case 'listenOnSpares':
        servers.forEach((server, index) => {
          server._handle = spares[index]!
          spares[index] = undefined
          server._listen2(null, -1, -1, backlog)
        })
        return
      case 'askCopy':
        if (process.connected) process.send!({ t: 'listener-copy', index: effect.index } satisfies ListenerCopyMessage)
        return
      case 'keepCopy':
        spares[effect.index] = arrived
        return
      case 'dropCopy':
        arrived?.close()
        return
      case 'dropSpares':
        for (let i = 0; i < spares.length; i++) {
          spares[i]?.close()
          spares[i] = undefined
        }
        return
      case 'report':
        if (process.connected)
          process.send!({ t: 'load', open: effect.open, state: effect.state } satisfies LoadMessage)
        return
      case 'retire':
        return retire('retired', effect.reason)
      case 'log':
        return effect.level === 'debug' ? log.debug(effect.message) : log.warning(effect.message)
    }
  }
  const first = startGate(gateSettings)
  let gate = first.gate
  const dispatch = (event: AcceptEvent) => {
    const step = stepGate(gate, event)
    gate = step.gate
    for (const effect of step.effects) carryOut(effect)
  }

  const reportTimer = isBalancing(gateSettings)
    ? setInterval(() => dispatch({ type: 'report' }), BALANCE_REPORT_MS).unref()
    : undefined
  const onMessage = (message: Partial<ListenerCopyMessage | BalanceMessage> | null, handle: unknown) => {
    if (message?.t === 'balance') {
      const { others, most, workers } = message as Partial<BalanceMessage>
      if (typeof others === 'number' && typeof most === 'number' && typeof workers === 'number')
        dispatch({ type: 'balance', others, most, workers })
      return
    }
    if (message?.t !== 'listener-copy' || typeof message.index !== 'number') return
    arrived = handle as ListenHandle | undefined
    dispatch({ type: 'copy', index: message.index, present: arrived !== undefined })
    arrived = undefined
  }
  process.on('message', onMessage)
  for (const effect of first.effects) carryOut(effect)

  const connection = { type: 'connection' } as const
  const close = { type: 'close' } as const
  // 'close' comes once: on() with a shared function allocates nothing, once() would.
  const onClose = () => dispatch(close)
  const onConnection = (socket: Socket) => {
    socket.on('close', onClose)
    dispatch(connection)
  }
  for (const server of all) server.on('connection', onConnection)
  // A failed listen on a copy leaves this worker unable to accept: let a new one take over.
  const onError = (err: Error) => dispatch({ type: 'listenFailed', message: err.message })
  for (const server of servers) server.on('error', onError)

  return {
    stop() {
      dispatch({ type: 'stop' })
      clearInterval(reportTimer)
      process.off('message', onMessage)
    },
  }
}
