// What each control command does (spec/control.md). Commands that steer are
// the chart's own events: `reload` is a HUP, `worker add N` is N TTINs and so
// on, put into the same stream as the signals, so a command and its signal
// cannot diverge. Commands that show read the chart's snapshot and the
// master's status (src/master/status.ts); none of them changes anything.
import type { MasterEvent, Signal } from '../../machines/master.ts'
import type { MasterCommand } from '../../machines/master-workers.ts'
import type { ConfigRow, ControlData, DirtyRow, ListenerRow, ReloadOutcome } from '../protocol/control.ts'
import { ControlError } from './control-socket.ts'
import type { CallStats } from '../dirty/protocol.ts'
import { machineSummary, type ChartView, type MasterStatus } from './status.ts'

export interface ControlView {
  /** The chart now: its state name and context. */
  snapshot(): ChartView
  status: MasterStatus
  pidOf(id: number): number | undefined
  config(): ConfigRow[]
  listeners(): Promise<ListenerRow[]>
  /** Puts a signal's event into the master's input stream, as if the signal had come. */
  signal(name: Signal): void
  /** Puts an event no signal has into the master's input stream (worker remove, worker kill). */
  event(event: MasterEvent): void
  /** Calls `step` with every event's commands, and whether the master is stopping after it, from now until it returns true. */
  watch(step: (commands: readonly MasterCommand[], stopping: boolean) => boolean): void
  /** The dirty pool (src/dirty/pool.ts): its workers, and its size by +N or -N. */
  dirty?: { list(): DirtyRow[]; scale(by: number): void; calls(): CallStats } | undefined
}

/** What `reload wait` has seen of its reload so far. */
export interface ReloadWatch {
  /** The generation the reload started (its reloadStarted), once it has. */
  readonly started?: number
  /** The last error the chart logged: an abandon says why there. */
  readonly lastError?: string
  readonly ended?: { outcome: ReloadOutcome; generation: number | null; detail?: string }
}

/**
 * One event's worth of a reload's progress, pure. The first reloadStarted
 * after the HUP is its reload (one already in flight started before it; a
 * HUP during one queues the next). It ends when that generation is all
 * ready (reloadCompleted) or given up (reloadAbandoned), when its settings
 * are refused before it starts (reloadRefused), or when the master starts to
 * stop first.
 */
export function followReload(watch: ReloadWatch, commands: readonly MasterCommand[], stopping: boolean): ReloadWatch {
  let w = watch
  for (const c of commands) {
    if (w.ended) return w
    if (c.type === 'log' && (c.level === 'error' || c.level === 'critical')) w = { ...w, lastError: c.message }
    if (c.type === 'reloadStarted' && w.started === undefined) w = { ...w, started: c.generation }
    // Reads are answered in the order asked: the first refusal before its reload started is its HUP's.
    if (c.type === 'reloadRefused' && w.started === undefined)
      w = { ...w, ended: { outcome: 'refused', generation: null, detail: c.problems.join('; ') } }
    if (c.type === 'reloadCompleted' && c.generation === w.started)
      w = { ...w, ended: { outcome: 'complete', generation: c.generation } }
    if (c.type === 'reloadAbandoned' && w.started !== undefined)
      w = { ...w, ended: { outcome: 'abandoned', generation: c.generation, detail: w.lastError ?? 'abandoned' } }
  }
  if (!w.ended && stopping) w = { ...w, ended: { outcome: 'stopping', generation: null } }
  return w
}

export const COMMANDS = [
  'show all',
  'show workers',
  'show stats',
  'show config',
  'show listeners',
  'show machine',
  'worker add [N]',
  'worker remove [N]',
  'worker kill PID',
  'show dirty',
  'dirty add [N]',
  'dirty remove [N]',
  'reload [wait]',
  'reopen',
  'upgrade',
  'shutdown [quick]',
  'help',
] as const

/** The most workers one `worker add` or `worker remove` may ask for: a typo should not fork thousands. */
const MAX_STEP = 64

export function createControlCommands(view: ControlView) {
  const send = (signal: Signal, count = 1): ControlData => {
    for (let i = 0; i < count; i++) view.signal(signal)
    return { kind: 'sent', event: signal, count, master: process.pid }
  }

  return async function run(words: readonly string[]): Promise<ControlData> {
    const [verb, ...rest] = words
    const chart = view.snapshot()
    const { context } = chart
    switch (verb) {
      case 'show': {
        const what = rest[0] ?? 'all'
        expectNoMore(words, 2)
        switch (what) {
          case 'workers':
            return { kind: 'workers', workers: view.status.workers(context, view.pidOf) }
          case 'stats':
            return { kind: 'stats', stats: view.status.stats() }
          case 'config':
            return { kind: 'config', settings: view.config() }
          case 'listeners':
            return { kind: 'listeners', listeners: await view.listeners() }
          case 'dirty':
            return { kind: 'dirty', dirty: view.dirty?.list() ?? [] }
          case 'machine':
            return { kind: 'machine', machine: machineSummary(chart) }
          case 'all':
            return {
              kind: 'all',
              machine: machineSummary(chart),
              workers: view.status.workers(context, view.pidOf),
              stats: view.status.stats(),
              listeners: await view.listeners(),
            }
          default:
            throw new ControlError(
              `show what? ${JSON.stringify(what)} is not one of all, workers, stats, config, listeners, machine, dirty`,
            )
        }
      }
      case 'dirty': {
        const [action, arg] = rest
        expectNoMore(words, 3)
        if (action !== 'add' && action !== 'remove')
          throw new ControlError('dirty what? expected dirty add [N] or dirty remove [N]')
        const n = count(arg)
        // The chart keeps the fewest dirty workers the apps need, and logs it when it does.
        view.dirty?.scale(action === 'add' ? n : -n)
        const detail = `${action === 'add' ? '+' : '-'}${n} dirty worker(s)`
        return { kind: 'sent', event: 'SCALE', count: 1, master: process.pid, detail }
      }
      case 'worker': {
        const [action, arg] = rest
        expectNoMore(words, 3)
        if (action === 'add') return send('TTIN', count(arg))
        if (action === 'remove') {
          const n = count(arg)
          view.event({ type: 'REMOVE_WORKERS', count: n })
          // One worker is the minimum: say how many go, not only how many were asked for.
          const removed = Math.min(n, context.target - 1)
          const detail =
            removed === n
              ? `${n} worker(s): ${context.target} -> ${context.target - n}`
              : `${removed} of ${n} worker(s) asked for, one worker is the minimum: ${context.target} -> ${context.target - removed}`
          return { kind: 'sent', event: 'REMOVE_WORKERS', count: 1, master: process.pid, detail }
        }
        if (action === 'kill') {
          const pid = Number(arg)
          const worker = context.workers.find((w) => view.pidOf(w.id) === pid)
          if (arg === undefined || !/^\d+$/.test(arg) || worker === undefined) {
            const pids = context.workers.map((w) => view.pidOf(w.id)).filter((p) => p !== undefined)
            throw new ControlError(
              `${JSON.stringify(arg ?? '')} is not the pid of a worker (they are: ${pids.join(', ')})`,
            )
          }
          view.event({ type: 'KILL_WORKER', id: worker.id })
          return { kind: 'sent', event: 'KILL_WORKER', count: 1, master: process.pid, detail: `worker pid ${pid}` }
        }
        throw new ControlError(`worker what? expected worker add [N], worker remove [N] or worker kill PID`)
      }
      case 'reload': {
        expectNoMore(words, 2)
        if (rest[0] === undefined) return send('HUP')
        if (rest[0] !== 'wait') throw new ControlError(`reload takes nothing or "wait", not ${JSON.stringify(rest[0])}`)
        // Watching starts before the HUP is sent: nothing of its reload is missed.
        const ended = new Promise<NonNullable<ReloadWatch['ended']>>((resolve) => {
          let watch: ReloadWatch = {}
          view.watch((commands, stopping) => {
            watch = followReload(watch, commands, stopping)
            if (watch.ended) resolve(watch.ended)
            return watch.ended !== undefined
          })
        })
        view.signal('HUP')
        return { kind: 'reload', ...(await ended), master: process.pid }
      }
      case 'reopen':
        expectNoMore(words, 1)
        return send('USR1')
      case 'upgrade':
        expectNoMore(words, 1)
        return send('USR2')
      case 'shutdown': {
        expectNoMore(words, 2)
        if (rest[0] !== undefined && rest[0] !== 'quick')
          throw new ControlError(`shutdown takes nothing or "quick", not ${JSON.stringify(rest[0])}`)
        return send(rest[0] === 'quick' ? 'INT' : 'TERM')
      }
      case 'help':
      case undefined:
        return { kind: 'help', commands: COMMANDS }
      default:
        throw new ControlError(`unknown command ${JSON.stringify(words.join(' '))}; try help`)
    }
  }
}

function count(arg: string | undefined): number {
  if (arg === undefined) return 1
  const n = Number(arg)
  if (!/^\d+$/.test(arg) || n < 1 || n > MAX_STEP)
    throw new ControlError(`expected a number of workers from 1 to ${MAX_STEP}, got ${JSON.stringify(arg)}`)
  return n
}

function expectNoMore(words: readonly string[], most: number): void {
  if (words.length > most)
    throw new ControlError(
      `${JSON.stringify(words.slice(most).join(' '))}: too many words after ${words.slice(0, most).join(' ')}`,
    )
}
