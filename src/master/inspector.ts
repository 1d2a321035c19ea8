// --inspector (spec/inspector.md): the live statechart inspector, a small
// HTTP server in the master. Loaded only when the flag is given, so off it
// costs nothing. It serves one prebuilt page (dist/inspector/index.html, made
// by scripts/build-inspector.ts), pushes what the chart does over SSE in
// @statelyai/inspect's message shapes, keeps a bounded timeline for time
// travel and export, and turns its buttons into the same signal events the
// control socket sends. Workers started with it on report their own machine's
// moves, forwarded as each worker's actor. Guarded Jupyter-style: a random token in the URL it
// logs; a foreign Origin or a Host other than the bound address or localhost
// (DNS rebinding) is refused.
import type { IncomingMessage, ServerResponse } from 'node:http'
import { SIGNALS, type MasterCommand, type MasterEvent, type MasterInput, type Signal } from '../../machines/master.ts'
import type { WorkerRow } from '../protocol/control.ts'
import { findPage, PAGE_HEADERS, serveGuarded } from './page-server.ts'
import type { ChartStep } from './parts/chart.ts'

/** Entries kept for time travel and export: the oldest go first. */
const TIMELINE_LIMIT = 5000
/** How often per-worker figures (RSS, requests, heartbeat age) are pushed while a page is open. */
const FIGURES_MS = 1000

/** One thing the master saw or did, as the page and the export hold it. */
interface TimelineEntry {
  readonly seq: number
  /** Epoch milliseconds. */
  readonly at: number
  /**
   * `event`: into the master's chart; `worker`: into a worker's own machine,
   * as that worker reported it; `ctl`: a control-socket command; `inspector`:
   * a button on this page.
   */
  readonly kind: 'event' | 'worker' | 'ctl' | 'inspector'
  /** For `worker`: which worker. */
  readonly worker?: number
  /** The master's event, or for `worker` the worker machine's. */
  readonly event?: MasterEvent | { readonly type: string }
  /** The chart's clock before the event: replay advances to it first (quiet ticks are not kept). */
  readonly nowBefore?: number
  readonly from?: unknown
  readonly value?: unknown
  readonly emitted?: readonly MasterCommand[]
  readonly workers?: readonly WorkerRow[]
  readonly text?: string
}

export interface InspectorOptions {
  /** The chart's input at start, for the export: a replay starts from it. */
  input: MasterInput
  /** The chart's state value now. */
  value(): unknown
  workers(): WorkerRow[]
  signal(name: Signal): void
  /** `worker kill`: the chart's KILL_WORKER event for worker `id` (the master stops it and starts another). */
  killWorker(id: number): void
  /** Tests and odd layouts: where index.html is; else found beside the bundle or in dist/. */
  page?: string
}

export interface Inspector {
  readonly url: string
  /** An event went into the chart (a step of its one observation path). */
  observe(step: ChartStep): void
  /** A control-socket command, as typed. */
  note(kind: 'ctl', text: string): void
  /** Worker `id`'s own machine took `event` and is now in `value` (the worker reported it). */
  workerState(id: number, value: string, event: { readonly type: string }): void
  close(): void
}

export async function startInspector(
  address: string,
  allowRemote: boolean,
  options: InspectorOptions,
): Promise<Inspector> {
  const page = findPage('--inspector', options.page)
  const started = Date.now()
  const timeline = createTimeline()
  const pages = createPages(options.workers)
  // Token, Host and Origin are checked before a request gets here (page-server.ts).
  const handle = (req: IncomingMessage, res: ServerResponse, url: URL) => {
    const headers = { 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' }
    const accepted = (text: string) => {
      pages.push({ type: 'corral.note', entry: timeline.record({ at: Date.now(), kind: 'inspector', text }) })
      res.writeHead(202, { ...headers, 'content-type': 'application/json' }).end('{"sent":true}')
    }
    if (req.method === 'GET' && url.pathname === '/') {
      res.writeHead(200, { ...headers, ...PAGE_HEADERS, 'content-type': 'text/html; charset=utf-8' }).end(page)
    } else if (req.method === 'GET' && url.pathname === '/events') {
      res.writeHead(200, { ...headers, 'content-type': 'text/event-stream' })
      pages.open(req, res, options.value(), timeline.entries)
    } else if (req.method === 'GET' && url.pathname === '/timeline.json') {
      const body = { corral: 'timeline', version: 1, input: options.input, started, timeline: timeline.entries }
      res.writeHead(200, { ...headers, 'content-type': 'application/json' }).end(JSON.stringify(body))
    } else if (req.method === 'POST' && url.pathname === '/send' && url.searchParams.has('kill')) {
      const id = Number(url.searchParams.get('kill'))
      if (!options.workers().some((w) => w.id === id))
        return res.writeHead(400, headers).end(`no worker ${JSON.stringify(url.searchParams.get('kill'))}\n`)
      accepted(`worker kill ${id}`)
      options.killWorker(id)
    } else if (req.method === 'POST' && url.pathname === '/send') {
      const signal = url.searchParams.get('signal') as Signal
      // The page's buttons send the master's own signals, as `kill` would: the chart's list.
      if (!SIGNALS.includes(signal))
        return res.writeHead(400, headers).end(`not a signal the master takes: ${JSON.stringify(signal)}\n`)
      accepted(signal)
      options.signal(signal)
    } else {
      res.writeHead(404, headers).end('not found\n')
    }
  }

  const { server, url } = await serveGuarded({
    flag: '--inspector',
    allowRemoteFlag: '--inspector-allow-remote',
    address,
    allowRemote,
    handle,
  }).catch((error: unknown) => {
    pages.close()
    throw error
  })

  return {
    url,
    observe({ event, before, from, value, commands: emitted, quiet }) {
      // A tick that only moved the clock: ten a second, not kept (a replay recovers it from nowBefore).
      if (quiet) return
      const workers = options.workers()
      const at = Date.now()
      const entry = timeline.record({ at, kind: 'event', event, nowBefore: before.now, from, value, emitted, workers })
      pages.masterMoved(event, value, workers, entry)
    },
    workerState(id, value, event) {
      const at = Date.now()
      const workers = options.workers()
      const entry = timeline.record({ at, kind: 'worker', worker: id, event, from: pages.reported(id), value, workers })
      pages.workerMoved(id, value, event, workers, entry)
    },
    note(kind, text) {
      pages.push({ type: 'corral.note', entry: timeline.record({ at: Date.now(), kind, text }) })
    },
    close() {
      pages.close()
      server.close()
    },
  }
}

/** What the master saw and did, kept for time travel and export: the oldest go first. */
function createTimeline() {
  const entries: TimelineEntry[] = []
  let seq = 0
  return {
    entries: entries as readonly TimelineEntry[],
    record(entry: Omit<TimelineEntry, 'seq'>): TimelineEntry {
      const full = { seq: ++seq, ...entry }
      entries.push(full)
      if (entries.length > TIMELINE_LIMIT) entries.splice(0, entries.length - TIMELINE_LIMIT)
      return full
    },
  }
}

/**
 * The open pages (SSE clients) and what they have been told, in
 * @statelyai/inspect's message shapes: the master as one actor, each worker
 * as another, announced once and forgotten when gone.
 */
function createPages(rows: () => WorkerRow[]) {
  const clients = new Set<ServerResponse>()
  /** The workers announced to the pages (an @xstate.actor each). */
  let announced = new Set<number>()
  /** Each worker's own machine state, as it last reported it. */
  const reported = new Map<number, string>()
  const push = (message: object) => {
    if (clients.size === 0) return
    const line = `data: ${JSON.stringify(message)}\n\n`
    for (const res of clients) res.write(line)
  }
  const masterSnapshot = (value: unknown, workers: readonly WorkerRow[]) => ({ status: 'active', value, workers })
  /**
   * A worker as an actor: its own machine's state as it last reported it
   * (null before its first report), the master's view of it (the row) as the
   * context.
   */
  const workerActor = (row: WorkerRow, at: number) => {
    const sessionId = `worker-${row.id}`
    const value = reported.get(row.id) ?? null
    const snapshot = { status: value === 'dead' ? 'done' : 'active', value, context: row }
    return { type: '@xstate.actor', sessionId, parentId: 'master', id: sessionId, snapshot, createdAt: at }
  }
  // The figures move without events (worker reports): pushed once a second while someone watches.
  const figures = setInterval(() => {
    if (clients.size > 0) push({ type: 'corral.workers', workers: rows(), at: Date.now() })
  }, FIGURES_MS)
  figures.unref()

  return {
    push,
    reported: (id: number) => reported.get(id),
    /** A page connects: the master (with the timeline so far) and every worker, then what follows. */
    open(req: IncomingMessage, res: ServerResponse, value: unknown, timeline: readonly TimelineEntry[]) {
      const at = Date.now()
      const now = rows()
      const snapshot = masterSnapshot(value, now)
      const master = { type: '@xstate.actor', sessionId: 'master', id: 'master', snapshot, createdAt: at, timeline }
      res.write(`data: ${JSON.stringify(master)}\n\n`)
      for (const row of now) res.write(`data: ${JSON.stringify(workerActor(row, at))}\n\n`)
      clients.add(res)
      req.on('close', () => clients.delete(res))
    },
    /** The master's chart took `event`; @xstate.actor for each worker the master has for the first time. */
    masterMoved(event: MasterEvent, value: unknown, workers: readonly WorkerRow[], entry: TimelineEntry) {
      const at = entry.at
      push({ type: '@xstate.event', sessionId: 'master', sourceId: undefined, event, createdAt: at, seq: entry.seq })
      push({ type: '@xstate.snapshot', sessionId: 'master', event, snapshot: masterSnapshot(value, workers), entry })
      const next = new Set<number>()
      for (const row of workers) {
        next.add(row.id)
        if (!announced.has(row.id)) push(workerActor(row, at))
      }
      for (const id of reported.keys()) if (!next.has(id)) reported.delete(id)
      announced = next
    },
    /** Worker `id`'s own machine took `event` and is now in `value`. */
    workerMoved(
      id: number,
      value: string,
      event: { readonly type: string },
      workers: readonly WorkerRow[],
      entry: TimelineEntry,
    ) {
      // Kept while the master has the worker (masterMoved forgets it after); a report after its exit is passed on, not kept.
      if (workers.some((w) => w.id === id)) reported.set(id, value)
      const sessionId = `worker-${id}`
      push({ type: '@xstate.event', sessionId, sourceId: undefined, event, createdAt: entry.at, seq: entry.seq })
      const snapshot = { status: value === 'dead' ? 'done' : 'active', value }
      push({ type: '@xstate.snapshot', sessionId, event, snapshot, entry, createdAt: entry.at })
    },
    close() {
      clearInterval(figures)
      for (const res of clients) res.end()
    },
  }
}
