// -u/--user, -g/--group: who the master's children run as (src/process/privileges.ts).
// Read once: the HTTP workers, the dirty workers and the stash's socket all follow it.
import * as Context from 'effect/Context'
import * as Effect from 'effect/Effect'
import * as Layer from 'effect/Layer'
import { workerSpawnIdentity } from '../../process/privileges.ts'
import { MasterConfig } from './config.ts'
import { startFailed } from './start-failed.ts'

export class ChildIdentity extends Context.Service<ChildIdentity, ReturnType<typeof workerSpawnIdentity>>()(
  'corral/master/ChildIdentity',
) {
  static readonly layer = Layer.effect(
    ChildIdentity,
    Effect.gen(function* () {
      const { settings } = yield* MasterConfig
      return yield* Effect.try({ try: () => workerSpawnIdentity(settings), catch: startFailed })
    }),
  )
}
