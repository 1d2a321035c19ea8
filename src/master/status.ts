// What the master knows about itself and its workers, for `corral ctl` and
// /metrics (spec/control.md, spec/metrics.md): the workers' batched counters,
// restarts by reason, reloads and upgrades, health. It only watches: events
// on their way into the chart, the commands the chart emits, and the chart's
// context before and after; it decides nothing.
import type { MasterCommand, MasterContext, MasterEvent } from '../../machines/master.ts'
import { workerState, type ExitCause } from '../../machines/master-workers.ts'
import { masterClock } from './event-sources.ts'
import {
  RESTART_REASONS,
  STATUS_CLASSES,
  type MachineSummary,
  type MasterStats,
  type RestartReason,
  type WorkerRow,
} from '../protocol/control.ts'
import { DURATION_BUCKETS, type WorkerStatsMessage } from '../protocol/master-worker.ts'

interface Report {
  readonly message: WorkerStatsMessage
  readonly at: number
  readonly cpuPercent: number | null
}

/** Request counts, by class, and durations: what outlives the worker that counted them. */
interface Totals {
  byClass: number[]
  buckets: number[]
  durationSum: number
}

export interface MasterStatus {
  /** A worker's batch of counters arrived. */
  report(id: number, message: WorkerStatsMessage): void
  /** An event went into the chart, which went from `before` to `after` (in state `state`) and emitted `commands`. */
  observe(event: MasterEvent, before: MasterContext, after: ChartView, commands: readonly MasterCommand[]): void
  workers(context: MasterContext, pidOf: (id: number) => number | undefined): WorkerRow[]
  stats(): MasterStats
  /** Requests by status class, and durations, since the master started (exited workers included). */
  totals(): Totals
  /** A live worker's latest report (--metrics-per-worker reads its RSS and CPU time). */
  latest(id: number): WorkerStatsMessage | undefined
  /** /healthz: at least one worker that has been ready is still there to serve. */
  healthy(context: MasterContext): boolean
}

export function createMasterStatus(now: () => number = masterClock): MasterStatus {
  const startedAt = now()
  const reports = new Map<number, Report>()
  const gone: Totals = {
    byClass: [0, 0, 0, 0, 0],
    buckets: new Array<number>(DURATION_BUCKETS.length + 1).fill(0),
    durationSum: 0,
  }
  const wasReady = new Set<number>()
  const restarts = Object.fromEntries(RESTART_REASONS.map((r) => [r, 0])) as Record<RestartReason, number>
  let reloads = 0
  let upgrades = 0

  function fold(into: Totals, m: WorkerStatsMessage): void {
    for (let i = 0; i < 5; i++) into.byClass[i]! += m.byClass[i] ?? 0
    if (!m.durations) return
    for (let i = 0; i < into.buckets.length; i++) into.buckets[i]! += m.durations.counts[i] ?? 0
    into.durationSum += m.durations.sum
  }

  function totals(): Totals {
    const sum: Totals = { byClass: [...gone.byClass], buckets: [...gone.buckets], durationSum: gone.durationSum }
    for (const { message } of reports.values()) fold(sum, message)
    return sum
  }

  const live = () => [...reports.values()].map((r) => r.message)

  return {
    report(id, message) {
      const at = now()
      const prev = reports.get(id)
      const elapsedMicros = prev ? (at - prev.at) * 1000 : 0
      const cpuPercent =
        prev && elapsedMicros > 0 ? ((message.cpuMicros - prev.message.cpuMicros) / elapsedMicros) * 100 : null
      reports.set(id, { message, at, cpuPercent })
    },

    observe(event, before, after, commands) {
      if (after.context.generation > before.generation) reloads++
      for (const command of commands) {
        if (command.type === 'reexec') upgrades++
        else if (command.type === 'workerExited') {
          // Why it left is the chart's to say (ExitCause); these are the restarts among those reasons.
          const reason = RESTART_OF[command.cause]
          if (reason !== undefined) restarts[reason]++
          const report = reports.get(command.id)
          if (report) fold(gone, report.message)
          reports.delete(command.id)
          wasReady.delete(command.id)
        }
      }
      if (event.type === 'WORKER_READY') wasReady.add(event.id)
    },

    workers(context, pidOf) {
      const at = now()
      return context.workers.map((w) => {
        const r = reports.get(w.id)
        return {
          id: w.id,
          pid: pidOf(w.id) ?? null,
          generation: w.generation,
          state: workerState(w),
          ageSeconds: seconds(at - w.spawnedAt),
          requests: r?.message.requests ?? 0,
          inFlight: r?.message.inFlight ?? 0,
          connections: r?.message.connections ?? 0,
          rssBytes: r?.message.rssBytes ?? null,
          cpuPercent: r?.cpuPercent === null || r === undefined ? null : Math.round(r.cpuPercent * 10) / 10,
          heartbeatAgeSeconds: seconds(context.now - w.lastBeat),
        }
      })
    },

    stats() {
      const { byClass } = totals()
      const reportsNow = live()
      return {
        pid: process.pid,
        uptimeSeconds: seconds(now() - startedAt),
        requests: Object.fromEntries(STATUS_CLASSES.map((c, i) => [c, byClass[i] ?? 0])) as MasterStats['requests'],
        requestsInFlight: reportsNow.reduce((n, m) => n + m.inFlight, 0),
        connections: reportsNow.reduce((n, m) => n + m.connections, 0),
        restarts: { ...restarts },
        reloads,
        upgrades,
      }
    },

    totals,

    latest: (id) => reports.get(id)?.message,

    healthy(context) {
      // A spare serves nothing: it is never what makes the master healthy.
      return context.workers.some(
        (w) => (w.status === 'running' && w.role === 'serving') || (w.status === 'stopping' && wasReady.has(w.id)),
      )
    },
  }
}

/**
 * The exits that are restarts (the worker is replaced), by the reason shown:
 * a boot failure while others serve is a crash with back-off; a stop, a
 * scale-down or an abandoned reload's worker is not replaced.
 */
const RESTART_OF: Readonly<Record<ExitCause, RestartReason | undefined>> = {
  crash: 'crash',
  'boot-failure': 'crash',
  timeout: 'timeout',
  'max-requests': 'max-requests',
  'max-memory': 'max-memory',
  retired: 'retired',
  killed: 'killed',
  reload: 'reload',
  'scaled-down': undefined,
  'abandoned-reload': undefined,
  stop: undefined,
}

const seconds = (ms: number) => Math.max(0, Math.round(ms / 100) / 10)

/** The chart's state as one dotted name: `active.running.steady`. */
export function stateName(value: unknown): string {
  if (typeof value === 'string') return value
  if (typeof value !== 'object' || value === null) return String(value)
  const [key, inner] = Object.entries(value)[0] ?? ['?', undefined]
  return inner === undefined || (typeof inner === 'object' && Object.keys(inner).length === 0)
    ? key
    : `${key}.${stateName(inner)}`
}

/** What the rest of the master reads of the chart now: its state, dotted, its context, and its tags. */
export interface ChartView {
  readonly state: string
  readonly context: MasterContext
  /** Serving and not about to stop (not booting, not after WINCH, not draining): the chart's `ready` tag. */
  readonly ready: boolean
  /** Stopping for good: the chart's `draining` tag. */
  readonly draining: boolean
}

export function machineSummary({ state, context, ready, draining }: ChartView): MachineSummary {
  return {
    pid: process.pid,
    state,
    ready,
    draining,
    target: context.target,
    generation: context.generation,
    workers: context.workers.length,
    reloadQueued: context.reloadQueued,
    childMaster: context.childMaster,
    crashStreak: context.crashStreak,
    clockSeconds: seconds(context.now),
  }
}
