// The server hooks that run in the master (src/master/server-hooks.ts,
// spec/hooks.md). They start before anything is bound (onStarting) and end
// last but the log (onExit, once the workers are gone, the listeners closed
// and the pidfile removed), so this part starts before those. --preload
// comes first of all: an app that cannot load stops corral before any hook.
import * as Context from 'effect/Context'
import * as Effect from 'effect/Effect'
import * as Layer from 'effect/Layer'
import type { WorkerInfo } from '../../hooks/hooks.ts'
import { preloadApp } from '../../process/process-settings.ts'
import { createMasterHooks, type MasterHooks } from '../server-hooks.ts'
import { MasterConfig } from './config.ts'
import { AppLoadFailed, startFailed } from './start-failed.ts'

interface HooksShape extends MasterHooks {
  /**
   * The worker pool starts after onStarting has run: from then on the hooks'
   * `server.workers` are its live workers (none before).
   */
  seeWorkers(list: () => readonly WorkerInfo[]): void
}

export class Hooks extends Context.Service<Hooks, HooksShape>()('corral/master/Hooks') {
  static readonly layer = Layer.effect(
    Hooks,
    Effect.gen(function* () {
      const { settings, app, name, log, inForce } = yield* MasterConfig
      // --preload: the app is imported here first; one that cannot load stops corral before anything is bound.
      if (settings.preload && !(yield* Effect.promise(() => preloadApp(app, log)))) return yield* new AppLoadFailed()
      let workers: () => readonly WorkerInfo[] = () => []
      const hooks = createMasterHooks({ settings: inForce, app, name, log, workers: () => workers() })
      yield* Effect.addFinalizer(() => Effect.promise(() => hooks.exiting()))
      // nworkersChanged, then onStarting, before anything is bound.
      yield* Effect.tryPromise({ try: () => hooks.starting(), catch: startFailed })
      return {
        ...hooks,
        seeWorkers: (list) => {
          workers = list
        },
      }
    }),
  )
}
