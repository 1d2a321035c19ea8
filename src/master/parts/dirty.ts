// --dirty-app (spec/dirty.md): the pool of dirty workers, supervised by its
// own chart (machines/dirty-pool.ts) beside the master's. It starts before
// the HTTP workers and stops after them, so their last calls are answered;
// it stops as the master does, gracefully or quickly, as the master's chart decides.
import { resolve } from 'node:path'
import * as Context from 'effect/Context'
import * as Effect from 'effect/Effect'
import * as Layer from 'effect/Layer'
import type { Settings } from '../../config/registry.ts'
import { startDirtyPool, type DirtyPool } from '../../dirty/pool.ts'
import { START_CWD } from '../../process/process-settings.ts'
import { Chart } from './chart.ts'
import { MasterConfig } from './config.ts'
import { ChildIdentity } from './identity.ts'

export class Dirty extends Context.Service<Dirty, DirtyPool<Settings>>()('corral/master/Dirty') {
  static readonly layer = Layer.effect(
    Dirty,
    Effect.gen(function* () {
      const { settings, app, name, log, inForce } = yield* MasterConfig
      const identity = yield* ChildIdentity
      const chart = yield* Chart
      let stop: 'graceful' | 'quick' = 'graceful'
      chart.observe(({ after }) => {
        if (after.state === 'draining.quick') stop = 'quick'
      })
      const dirty = yield* Effect.acquireRelease(
        Effect.promise(() =>
          startDirtyPool({
            settings,
            log,
            identity,
            server: {
              pid: process.pid,
              app,
              name,
              log,
              get settings() {
                return inForce()
              },
            },
            configFile: settings.config === undefined ? undefined : resolve(START_CWD, settings.config),
          }),
        ),
        (d) => Effect.promise(() => d.stop(stop)),
      )
      // Nothing the master started outlives it, however it ends.
      yield* Effect.acquireRelease(
        Effect.sync(() => process.on('exit', dirty.killAll)),
        () => Effect.sync(() => process.off('exit', dirty.killAll)),
      )
      return dirty
    }),
  )
}
