// --pid: the pidfile, checked at start (its directory must be writable),
// written once the master serves (the chart's `ready`), removed at the end.
import { accessSync, constants } from 'node:fs'
import { dirname } from 'node:path'
import * as Context from 'effect/Context'
import * as Effect from 'effect/Effect'
import * as Layer from 'effect/Layer'
import { createPidfile, type Pidfile as PidfileShape } from '../pidfile.ts'
import { MasterConfig } from './config.ts'
import { startFailed } from './start-failed.ts'

export class Pidfile extends Context.Service<Pidfile, PidfileShape>()('corral/master/Pidfile') {
  static readonly layer = Layer.effect(
    Pidfile,
    Effect.gen(function* () {
      const { settings } = yield* MasterConfig
      return yield* Effect.acquireRelease(
        Effect.try({ try: () => checkedPidfile(settings.pid), catch: startFailed }),
        (p) => Effect.sync(() => p.remove()),
      )
    }),
  )
}

/** A pidfile whose directory we can write, checked now rather than once serving. */
function checkedPidfile(path: string | undefined): PidfileShape {
  if (path !== undefined) {
    try {
      accessSync(dirname(path), constants.W_OK)
    } catch (err) {
      throw new Error(`Can't write pidfile ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`)
    }
  }
  return createPidfile(path)
}
