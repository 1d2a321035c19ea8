// The stash (spec/stash.md): the tables every worker shares, served by the
// master on a socket of its own. Open before the first worker, which finds it
// by $CORRAL_STASH_SOCKET, and closed after the last one has gone.
import * as Effect from 'effect/Effect'
import * as Layer from 'effect/Layer'
import { startStash } from '../../stash/server.ts'
import { MasterConfig } from './config.ts'
import { ChildIdentity } from './identity.ts'
import { startFailed } from './start-failed.ts'

export const stashLayer = Layer.effectDiscard(
  Effect.gen(function* () {
    const { settings, log } = yield* MasterConfig
    // -u/-g: the socket belongs to the workers' user and group, so they can reach it.
    const owner = yield* ChildIdentity
    yield* Effect.acquireRelease(
      Effect.tryPromise({
        try: () => startStash({ maxBytes: settings.stashMaxBytes, owner, log }),
        catch: startFailed,
      }),
      (stash) => Effect.promise(() => stash.stop()),
    )
  }),
)
