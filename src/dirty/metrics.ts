// The dirty pool's series at /metrics (spec/metrics.md), read when scraped
// from the pool's chart and its dirty workers' last reports: nothing is
// counted here. Loaded with src/master/metrics.ts, only with --metrics-bind.
import { Counter, Gauge, type Registry } from 'prom-client'
import { DURATION_BUCKETS } from '../protocol/master-worker.ts'
import type { DirtyRow } from '../protocol/control.ts'
import { CALL_OUTCOMES, type CallStats } from './protocol.ts'

export interface DirtyMetricsSource {
  list(): DirtyRow[]
  calls(): CallStats
}

const DIRTY_STATES = ['booting', 'ready', 'stopping', 'killed'] as const

export function registerDirtyMetrics(registry: Registry, source: DirtyMetricsSource): void {
  new Gauge({
    name: 'corral_dirty_workers',
    help: 'Dirty worker processes, by the state the dirty pool knows them in.',
    labelNames: ['state'],
    registers: [registry],
    collect() {
      const rows = source.list()
      for (const state of DIRTY_STATES) this.set({ state }, rows.filter((r) => r.state === state).length)
    },
  })
  new Counter({
    name: 'corral_dirty_calls_total',
    help: 'Dirty calls ended, by app and outcome (ok, error, no-method, timeout, aborted), as the dirty workers counted them.',
    labelNames: ['app', 'outcome'],
    registers: [registry],
    collect() {
      this.reset()
      for (const [app, stats] of Object.entries(source.calls()))
        for (const outcome of CALL_OUTCOMES) {
          const n = stats.outcomes[outcome]
          if (n) this.inc({ app, outcome }, n)
        }
    },
  })
  const name = 'corral_dirty_call_duration_seconds'
  const help = 'Time a dirty call ran in its dirty worker, by app.'
  registry.registerMetric({
    name,
    help,
    type: 'histogram',
    aggregator: 'sum',
    reset() {},
    async get() {
      const values: { metricName: string; labels: Record<string, string | number>; value: number }[] = []
      for (const [app, stats] of Object.entries(source.calls())) {
        let cumulative = 0
        DURATION_BUCKETS.forEach((le, i) => {
          cumulative += stats.buckets[i] ?? 0
          values.push({ metricName: `${name}_bucket`, labels: { app, le }, value: cumulative })
        })
        cumulative += stats.buckets[DURATION_BUCKETS.length] ?? 0
        values.push({ metricName: `${name}_bucket`, labels: { app, le: '+Inf' }, value: cumulative })
        values.push({ metricName: `${name}_sum`, labels: { app }, value: stats.sum })
        values.push({ metricName: `${name}_count`, labels: { app }, value: cumulative })
      }
      return { name, help, type: 'histogram', aggregator: 'sum', values }
    },
  } as unknown as Parameters<Registry['registerMetric']>[0])
}
