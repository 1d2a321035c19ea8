// When a worker holding connections under --worker-connections or
// --balance-slack accepts, and when it stops: the decisions of
// limitConnections (src/worker/limits.ts), as a pure reducer. The shell
// there owns the libuv handles and the IPC channel and carries out the
// effects; this file only decides, so every path can be tested without a
// socket (test/accept-gate.test.ts).
//
//   accepting ──(holds `limit`)──▶ paused ──(below `limit`)──▶ accepting
//                                    │                            ▲
//                                    └─(below, a copy missing)─▶ resuming
//                                                       (the copies came)
//   any ──(stop)──▶ stopped
//
// Pausing closes the worker's handles of the shared listeners (libuv cannot
// stop watching a socket otherwise); resuming listens on copies the master
// sent, which are asked for at the first pause and then kept in hand.

/** Whether the worker takes connections from the shared listeners. */
type AcceptPhase =
  /** Listening on every shared listener. */
  | 'accepting'
  /** Holding `limit` connections: its handles are closed until one ends. */
  | 'paused'
  /** Below `limit` again but a copy of a listener is still on its way from the master. */
  | 'resuming'
  /** Draining or closing: never accepts again. */
  | 'stopped'

/** What the master is told of this worker's load (spec/worker-limits.md, --balance-slack). */
type LoadState = 'accepting' | 'paused' | 'leaving'

export interface AcceptGateSettings {
  /** --worker-connections; Infinity when unset. */
  readonly maxConnections: number
  readonly balanceSlack: number
  /** How many listeners can be paused: the inherited ones (--reuse-port sockets never are). */
  readonly shared: number
}

export interface AcceptGate {
  readonly settings: AcceptGateSettings
  readonly phase: AcceptPhase
  /** Connections held now. */
  readonly open: number
  /** The most held since the last report: what is reported, so short connections count at their peak. */
  readonly peak: number
  /** Where the worker stops accepting: --worker-connections, or lower, its balanced cap. */
  readonly limit: number
  /** The pool's size, as the master last said. */
  readonly workers: number
  /** Per shared listener: a copy in hand, not yet listened on. */
  readonly spares: readonly boolean[]
  /** Per shared listener: a copy asked for that has not come yet. */
  readonly asked: readonly boolean[]
  /** The last report sent (state and count), so an unchanged one is not sent again. */
  readonly reported: string | undefined
}

export type AcceptEvent =
  | { readonly type: 'connection' }
  | { readonly type: 'close' }
  /** The master's view of the other workers (--balance-slack). */
  | { readonly type: 'balance'; readonly others: number; readonly most: number; readonly workers: number }
  /** A copy of listener `index` came from the master, or (`present` false) it could not send one. */
  | { readonly type: 'copy'; readonly index: number; readonly present: boolean }
  /** The report timer: tell the master the load if it changed. */
  | { readonly type: 'report' }
  /** Listening on the copies failed. */
  | { readonly type: 'listenFailed'; readonly message: string }
  | { readonly type: 'stop' }

export type AcceptEffect =
  /** Close the handles of the shared listeners. */
  | { readonly type: 'closeHandles' }
  /** Listen on the spare copies, in place of the closed handles. */
  | { readonly type: 'listenOnSpares' }
  | { readonly type: 'askCopy'; readonly index: number }
  /** Keep the copy that just came as listener `index`'s spare. */
  | { readonly type: 'keepCopy'; readonly index: number }
  /** Close the copy that just came: not needed. */
  | { readonly type: 'dropCopy' }
  /** Close every spare copy in hand. */
  | { readonly type: 'dropSpares' }
  | { readonly type: 'report'; readonly open: number; readonly state: LoadState }
  | { readonly type: 'retire'; readonly reason: string }
  | { readonly type: 'log'; readonly level: 'debug' | 'warning'; readonly message: string }

export interface AcceptStep {
  readonly gate: AcceptGate
  readonly effects: readonly AcceptEffect[]
}

const NOTHING: readonly AcceptEffect[] = Object.freeze([])

/** Balancing only pauses shared listeners: with none (only --reuse-port ones) there is nothing to balance. */
export const isBalancing = (s: AcceptGateSettings) => s.balanceSlack > 0 && s.shared > 0

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

function initialGate(settings: AcceptGateSettings): AcceptGate {
  return {
    settings,
    phase: 'accepting',
    open: 0,
    peak: 0,
    limit: settings.maxConnections,
    workers: 1,
    spares: settings.shared > 0 ? new Array<boolean>(settings.shared).fill(false) : [],
    asked: settings.shared > 0 ? new Array<boolean>(settings.shared).fill(false) : [],
    reported: undefined,
  }
}

/** The first step: the master counts this worker in from its first report. */
export function startGate(settings: AcceptGateSettings): AcceptStep {
  return report(initialGate(settings), [])
}

export function stepGate(gate: AcceptGate, event: AcceptEvent): AcceptStep {
  switch (event.type) {
    case 'connection': {
      const open = gate.open + 1
      const next = { ...gate, open, peak: Math.max(gate.peak, open) }
      if (gate.phase === 'accepting' && open >= gate.limit && gate.settings.shared > 0) return pause(next)
      return { gate: next, effects: NOTHING }
    }
    case 'close':
      return resumeIfBelow({ ...gate, open: gate.open - 1 }, [])
    case 'balance': {
      if (!isBalancing(gate.settings)) return { gate, effects: NOTHING }
      const { settings } = gate
      const effects: AcceptEffect[] =
        event.workers === gate.workers
          ? []
          : [debug(`Balancing connections across ${event.workers} workers (--balance-slack ${settings.balanceSlack})`)]
      const limit = Math.min(
        settings.maxConnections,
        balanceCap(event.others, event.most, event.workers, settings.balanceSlack),
      )
      return resumeIfBelow({ ...gate, workers: event.workers, limit }, effects)
    }
    case 'copy': {
      const { index } = event
      // Without a copy this worker cannot accept again: let a new one take over.
      if (!event.present)
        return { gate, effects: [{ type: 'retire', reason: `the master could not send a copy of listener ${index}` }] }
      if (gate.phase === 'stopped' || index < 0 || index >= gate.spares.length || gate.spares[index])
        return { gate, effects: [{ type: 'dropCopy' }] }
      const next = { ...gate, asked: replace(gate.asked, index, false), spares: replace(gate.spares, index, true) }
      const effects: AcceptEffect[] = [{ type: 'keepCopy', index }]
      return next.phase === 'resuming' && next.spares.every(Boolean) ? resume(next, effects) : { gate: next, effects }
    }
    case 'report':
      return report(gate, [])
    case 'listenFailed':
      return {
        gate,
        effects: [
          { type: 'log', level: 'warning', message: `Worker could not accept again: ${event.message}` },
          { type: 'retire', reason: `could not resume accepting: ${event.message}` },
        ],
      }
    case 'stop': {
      if (gate.phase === 'stopped') return { gate, effects: NOTHING }
      // The master counts it out: a draining worker takes no share.
      const stopped = { ...gate, phase: 'stopped' as const, spares: gate.spares.map(() => false) }
      const { gate: reported, effects } = report(stopped, [])
      return { gate: reported, effects: [...effects, { type: 'dropSpares' }] }
    }
  }
}

function pause(gate: AcceptGate): AcceptStep {
  const paused = { ...gate, phase: 'paused' as const }
  const asking = askForCopies(paused, [
    // Closing the handles inside the 'connection' event also ends libuv's
    // accept loop for this wake-up: nothing more is taken from the queue.
    { type: 'closeHandles' },
    debug(`Worker holds ${gate.open} connections (${describeLimit(gate)}); not accepting`),
  ])
  // At once: if every worker has paused, the master answers with fresh counts.
  return report(asking.gate, asking.effects)
}

/** Paused or resuming, and now below the limit: accept again, or wait for the copies. */
function resumeIfBelow(gate: AcceptGate, effects: readonly AcceptEffect[]): AcceptStep {
  // A lower balanced cap can reach a worker waiting for its copies: it holds its limit again, so it waits paused.
  if (gate.phase === 'resuming' && gate.open >= gate.limit) return { gate: { ...gate, phase: 'paused' }, effects }
  if ((gate.phase !== 'paused' && gate.phase !== 'resuming') || gate.open >= gate.limit)
    return { gate, effects: effects.length === 0 ? NOTHING : effects }
  if (!gate.spares.every(Boolean)) return askForCopies({ ...gate, phase: 'resuming' }, effects)
  return resume(gate, effects)
}

function resume(gate: AcceptGate, effects: readonly AcceptEffect[]): AcceptStep {
  const accepting = { ...gate, phase: 'accepting' as const, spares: gate.spares.map(() => false) }
  return askForCopies(accepting, [
    ...effects,
    { type: 'listenOnSpares' },
    debug(`Worker holds ${gate.open} connections (${describeLimit(gate)}); accepting again`),
  ])
}

/** Asks for a copy of each listener that has none in hand or on its way. */
function askForCopies(gate: AcceptGate, effects: readonly AcceptEffect[]): AcceptStep {
  const missing = gate.spares.flatMap((spare, index) => (spare || gate.asked[index] ? [] : [index]))
  if (missing.length === 0) return { gate, effects }
  return {
    gate: { ...gate, asked: gate.asked.map((asked, index) => asked || missing.includes(index)) },
    effects: [...effects, ...missing.map((index) => ({ type: 'askCopy' as const, index }))],
  }
}

function report(gate: AcceptGate, effects: readonly AcceptEffect[]): AcceptStep {
  if (!isBalancing(gate.settings)) return { gate, effects }
  const state: LoadState = gate.phase === 'stopped' ? 'leaving' : gate.phase === 'accepting' ? 'accepting' : 'paused'
  const held = Math.max(gate.peak, gate.open)
  const key = `${state} ${held}`
  const next = { ...gate, peak: gate.open }
  if (key === gate.reported) return { gate: next, effects }
  return { gate: { ...next, reported: key }, effects: [...effects, { type: 'report', open: held, state }] }
}

const describeLimit = (gate: AcceptGate) =>
  gate.limit < gate.settings.maxConnections
    ? `balanced share of ${gate.workers} workers: ${gate.limit}`
    : `--worker-connections ${gate.limit}`

const debug = (message: string): AcceptEffect => ({ type: 'log', level: 'debug', message })

function replace(values: readonly boolean[], index: number, value: boolean): boolean[] {
  const copy = [...values]
  copy[index] = value
  return copy
}
