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
//   sends them back (src/master/connection-balance.ts); see balanceCap for
//   the policy.
// - --max-requests N (+ --max-requests-jitter J) and --max-memory MB: the
//   worker tells the master it is retiring (the master starts its replacement
//   at once and does not count the exit as a crash), then drains exactly as
//   on SIGTERM.
//
// Per request: nothing, or one counter with --max-requests. Per connection
// with --worker-connections or --balance-slack: a counter, a comparison and a
// shared 'close' listener. Balancing adds one small IPC message each way at
// most every BALANCE_REPORT_MS, and one when the worker pauses.
import type { RetireCause } from '../../machines/worker.ts'
import type { IncomingMessage, Server, ServerOptions, ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import type { BalanceMessage, ListenerCopyMessage, LoadMessage } from '../protocol/master-worker.ts'

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

/**
 * The balance policy, whole: how many connections a worker may hold before
 * it stops accepting. It stops only when it is the most loaded worker (it
 * holds at least as many as any other) *and* holds at least the other
 * workers' average plus `slack`:
 *
 *   cap = max(⌊others / (workers − 1) + slack⌋, most)
 *
 * (others: the sum of the other workers' last reports; most: the largest of
 * them). With `total` connections in all no worker holds more than
 * total / workers + slack × (workers − 1) / workers: 13 of 50 over 4
 * workers, 4 of 16, for slack 1. Measured against the others' average rather
 * than a share that counts itself, so a small pool is spread exactly
 * (4/4/4/4, not 5/5/5/1); and only the most loaded steps back, so workers
 * holding the same never all pause, and a connection-per-request load, whose
 * counts jitter, seldom pauses anyone.
 *
 * A worker alone never pauses for balance (Infinity). Other workers' counts
 * are a little stale: while connections arrive they are lower than the truth,
 * which only makes the cap lower, so the bound holds. If that leaves every
 * worker paused, the master sends fresh counts at once; with them the least
 * loaded worker is under its cap again (a paused worker's count can only
 * fall). So a connection never waits while a worker is under its share.
 */
function balanceCap(others: number, most: number, workers: number, slack: number): number {
  if (slack <= 0 || workers <= 1) return Number.POSITIVE_INFINITY
  return Math.max(1, Math.floor(others / (workers - 1) + slack), most)
}

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

function limitConnections(
  all: PausableServer[],
  inherited: number,
  options: WorkerLimitsOptions,
  retire: (cause: RetireCause, reason: string) => void,
) {
  const { log, backlog, settings } = options
  const servers = all.slice(0, inherited)
  const maxConnections = settings.workerConnections > 0 ? settings.workerConnections : Number.POSITIVE_INFINITY
  // Balancing only pauses shared sockets: with none (only --reuse-port ones) there is nothing to balance.
  const balancing = settings.balanceSlack > 0 && servers.length > 0
  /** Where this worker stops accepting: --worker-connections, or lower, its balanced cap. */
  let limit = maxConnections
  let open = 0
  let paused = false
  let stopped = false
  let resumeWhenReady = false
  /** A copy of each listener, received from the master, not yet listened on. */
  const spares: (ListenHandle | undefined)[] = servers.map(() => undefined)
  const asked: boolean[] = servers.map(() => false)

  const askForCopies = () => {
    servers.forEach((_, index) => {
      if (spares[index] || asked[index] || !process.connected) return
      asked[index] = true
      process.send!({ t: 'listener-copy', index } satisfies ListenerCopyMessage)
    })
  }

  const pause = () => {
    paused = true
    for (const server of servers) {
      const handle = server._handle
      if (!handle) continue
      // Closing the handle inside the 'connection' event also ends libuv's
      // accept loop for this wake-up: nothing more is taken from the queue.
      server._handle = null
      handle.close()
    }
    log.debug(`Worker holds ${open} connections (${describeLimit()}); not accepting`)
    askForCopies()
    // At once: if every worker has paused, the master answers with fresh counts.
    report()
  }

  const resume = () => {
    if (stopped) return
    if (spares.some((s) => s === undefined)) {
      resumeWhenReady = true
      askForCopies()
      return
    }
    resumeWhenReady = false
    paused = false
    servers.forEach((server, index) => {
      server._handle = spares[index]!
      spares[index] = undefined
      server._listen2(null, -1, -1, backlog)
    })
    log.debug(`Worker holds ${open} connections (${describeLimit()}); accepting again`)
    askForCopies()
  }

  const describeLimit = () =>
    limit < maxConnections ? `balanced share of ${workers} workers: ${limit}` : `--worker-connections ${limit}`

  // Balancing: what the master last said about the others, and what this worker last told it.
  let workers = 1
  let reported: string | undefined
  /**
   * The most connections held since the last report, which is what is
   * reported: long-lived connections count the same either way, while the
   * short ones of a connection-per-request load, which come and go between
   * reports, count at their peak instead of at a random moment. Otherwise
   * every worker would see the others' counts sampled low half the time and
   * pause on the noise, about once every 20 requests.
   */
  let peak = 0
  const report = () => {
    if (!balancing || !process.connected) return
    const state = stopped ? 'leaving' : paused ? 'paused' : 'accepting'
    const held = Math.max(peak, open)
    peak = open
    const key = `${state} ${held}`
    if (key === reported) return
    reported = key
    process.send!({ t: 'load', open: held, state } satisfies LoadMessage)
  }
  const reportTimer = balancing ? setInterval(report, BALANCE_REPORT_MS).unref() : undefined
  const onBalance = (others: number, most: number, count: number) => {
    if (count !== workers)
      log.debug(`Balancing connections across ${count} workers (--balance-slack ${settings.balanceSlack})`)
    workers = count
    limit = Math.min(maxConnections, balanceCap(others, most, count, settings.balanceSlack))
    if (paused && !stopped && open < limit) resume()
  }

  function onClose(): void {
    open--
    if (paused && !stopped && open < limit) resume()
  }

  const onMessage = (message: Partial<ListenerCopyMessage | BalanceMessage> | null, handle: unknown) => {
    if (message?.t === 'balance') {
      const { others, most, workers } = message as Partial<BalanceMessage>
      if (balancing && typeof others === 'number' && typeof most === 'number' && typeof workers === 'number')
        onBalance(others, most, workers)
      return
    }
    if (message?.t !== 'listener-copy' || typeof message.index !== 'number') return
    const index = message.index
    const copy = handle as ListenHandle | undefined
    // Without a copy this worker cannot accept again: let a new one take over.
    if (!copy) return retire('retired', `the master could not send a copy of listener ${index}`)
    if (stopped || index >= servers.length || spares[index]) return copy.close()
    asked[index] = false
    spares[index] = copy
    if (resumeWhenReady && !spares.some((s) => s === undefined)) resume()
  }
  process.on('message', onMessage)
  // The master counts this worker in from its first report.
  report()

  const onConnection = (socket: Socket) => {
    // 'close' comes once: on() with a shared function allocates nothing, once() would.
    socket.on('close', onClose)
    // (Only --reuse-port sockets: nothing can be paused.)
    if (++open > peak) peak = open
    if (open >= limit && !paused && !stopped && servers.length > 0) pause()
  }
  for (const server of all) server.on('connection', onConnection)
  // A failed listen on a copy leaves this worker unable to accept: let a new one take over.
  const onError = (err: Error) => {
    log.warning(`Worker could not accept again: ${err.message}`)
    retire('retired', `could not resume accepting: ${err.message}`)
  }
  for (const server of servers) server.on('error', onError)

  return {
    stop() {
      if (stopped) return
      stopped = true
      // The master counts it out: a draining worker takes no share.
      report()
      clearInterval(reportTimer)
      process.off('message', onMessage)
      for (let i = 0; i < spares.length; i++) {
        spares[i]?.close()
        spares[i] = undefined
      }
    },
  }
}
