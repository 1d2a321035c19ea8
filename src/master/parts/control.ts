// The control socket, --metrics-bind and --inspector (src/master/master-control.ts):
// they read the chart and the status, and put signals' events into the
// chart's input stream.
import * as Context from 'effect/Context'
import * as Effect from 'effect/Effect'
import * as Layer from 'effect/Layer'
import { openMasterControl, type MasterControl } from '../master-control.ts'
import { Chart } from './chart.ts'
import { MasterConfig } from './config.ts'
import { Listeners } from './listeners.ts'
import { Dirty } from './dirty.ts'
import { Pool } from './pool.ts'
import { startFailed } from './start-failed.ts'
import { Status } from './status.ts'

export class Control extends Context.Service<Control, MasterControl>()('corral/master/Control') {
  static readonly layer = Layer.effect(
    Control,
    Effect.gen(function* () {
      const { settings, inForce, sourcesOf, log, statsd } = yield* MasterConfig
      const chart = yield* Chart
      const { status, onWorkerState } = yield* Status
      const pool = yield* Pool
      const dirty = yield* Dirty
      const { all } = yield* Listeners
      return yield* Effect.acquireRelease(
        Effect.tryPromise({
          try: () =>
            openMasterControl({
              settings,
              inForce,
              sourcesOf,
              log,
              chart,
              status,
              onWorkerState,
              pidOf: (id) => pool.list().find((w) => w.id === id)?.pid,
              listeners: all,
              statsd,
              dirty: { list: dirty.list, scale: dirty.scale, calls: dirty.calls },
            }),
          catch: startFailed,
        }),
        (control) => Effect.sync(() => control.close()),
      )
    }),
  )
}
