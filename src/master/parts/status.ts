// What the master knows about itself and its workers (src/master/status.ts):
// it watches the chart's steps and hears the workers' own reports. It starts
// before the worker pool, whose workers report to it from their first
// message.
import * as Context from 'effect/Context'
import * as Effect from 'effect/Effect'
import * as Layer from 'effect/Layer'
import type { WorkerStateMessage } from '../../protocol/master-worker.ts'
import { createMasterStatus, type MasterStatus } from '../status.ts'
import { Chart } from './chart.ts'

interface StatusShape {
  readonly status: MasterStatus
  /** --inspector: a worker's own machine took an event (it reports only when the inspector is on). */
  workerState(id: number, message: WorkerStateMessage): void
  /** Calls `listener` with each worker's own machine move from now on (the inspector). */
  onWorkerState(listener: (id: number, message: WorkerStateMessage) => void): void
}

export class Status extends Context.Service<Status, StatusShape>()('corral/master/Status') {
  static readonly layer = Layer.effect(
    Status,
    Effect.gen(function* () {
      const chart = yield* Chart
      const status = createMasterStatus()
      chart.observe((step) => status.observe(step.event, step.before, step.after, step.commands))
      const listeners: Array<(id: number, message: WorkerStateMessage) => void> = []
      return {
        status,
        workerState: (id, message) => {
          for (const listener of listeners) listener(id, message)
        },
        onWorkerState: (listener) => void listeners.push(listener),
      }
    }),
  )
}
