// The worker processes (src/master/worker-pool.ts): spawned with the
// listeners as inherited fds, their exits and messages put into the chart's
// input stream. Nothing the master started outlives it, however it ends.
import * as Context from 'effect/Context'
import * as Effect from 'effect/Effect'
import * as Layer from 'effect/Layer'
import { createWorkerPool, type WorkerPool } from '../worker-pool.ts'
import { Chart } from './chart.ts'
import { MasterConfig } from './config.ts'
import { Hooks } from './hooks.ts'
import { Listeners } from './listeners.ts'
import { ChildIdentity } from './identity.ts'
import { Status } from './status.ts'

export class Pool extends Context.Service<Pool, WorkerPool>()('corral/master/Pool') {
  static readonly layer = Layer.effect(
    Pool,
    Effect.gen(function* () {
      const { settings, app, name, log } = yield* MasterConfig
      const listeners = yield* Listeners
      const chart = yield* Chart
      const { status, workerState } = yield* Status
      const hooks = yield* Hooks
      const identity = yield* ChildIdentity
      const pool = createWorkerPool({
        // --reuse-port: workers bind their own sockets for those addresses (src/net/listeners.ts).
        listenerFds: listeners.all.filter((l) => !l.reusePort).map((l) => l.fd),
        worker: {
          app,
          name,
          addresses: [...listeners.urls],
          reusePort: listeners.all.flatMap((l) => (l.reusePort ? [l.reusePort] : [])),
          // --inspector: workers report their own machine's moves; without it they are not asked to (spec/inspector.md).
          ...(settings.inspector !== undefined && { inspector: true }),
        },
        identity,
        emit: chart.emit,
        log,
        report: (id, message) => status.report(id, message),
        ...(settings.inspector !== undefined && { workerState }),
      })
      hooks.seeWorkers(pool.list)
      yield* Effect.acquireRelease(
        Effect.sync(() => process.on('exit', pool.killAll)),
        () =>
          Effect.sync(() => {
            pool.killAll()
            process.off('exit', pool.killAll)
          }),
      )
      return pool
    }),
  )
}
