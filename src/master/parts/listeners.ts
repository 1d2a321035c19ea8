// The listening sockets: opened here (or taken over from the master that
// started this one by USR2, or from systemd), closed when the master ends.
// A new master started by USR2 may still serve them when this one exits:
// then a unix socket's path stays.
import type { ChildProcess } from 'node:child_process'
import * as Context from 'effect/Context'
import * as Effect from 'effect/Effect'
import * as Layer from 'effect/Layer'
import type { MasterEvent } from '../../../machines/master.ts'
import { withScheme } from '../../http/tls.ts'
import { openListeners, type Listener } from '../../net/listeners.ts'
import { spawnNewMaster, takeInheritedListeners } from '../reexec.ts'
import { chooseBinds } from '../socket-activation.ts'
import { MasterConfig } from './config.ts'
import { startFailed } from './start-failed.ts'

interface ListenersShape {
  /** The sockets, each with its address as people see it (an inherited one's original). */
  readonly all: readonly Listener[]
  /** Their addresses as clients reach them (https:// under TLS). */
  readonly urls: readonly string[]
  /** USR2: starts a new master that inherits these sockets; they are its from now on. */
  handOver(emit: (event: MasterEvent) => void): ChildProcess
}

export class Listeners extends Context.Service<Listeners, ListenersShape>()('corral/master/Listeners') {
  static readonly layer = Layer.effect(
    Listeners,
    Effect.gen(function* () {
      const { settings, log } = yield* MasterConfig
      // A master started by USR2 serves the sockets its parent handed it and binds nothing;
      // one started by systemd serves systemd's (src/master/socket-activation.ts).
      const inherited = takeInheritedListeners()
      const binds = chooseBinds(settings, inherited, log)
      let newMaster: ChildProcess | undefined
      const opened = yield* Effect.acquireRelease(
        Effect.try({
          try: () => openListeners(binds, { backlog: settings.backlog, reusePort: settings.reusePort }),
          catch: startFailed,
        }),
        (ls) =>
          Effect.sync(() => {
            for (const l of ls) l.close({ unlink: !isAlive(newMaster) })
          }),
      )
      const all = opened.map((l, i) => ({ ...l, address: inherited?.[i]?.address ?? l.address }))
      const urls = all.map((l) => withScheme(l.address, settings))
      for (const [i, l] of all.entries()) {
        const perWorker = l.reusePort ? ' (a socket per worker: --reuse-port)' : ''
        log.info(`Listening at: ${urls[i]} (${process.pid})${perWorker}`)
      }
      if (inherited) log.info(`Took over ${inherited.length} listener(s) from the previous master`)
      // TCP addresses reach LISTEN beside the first worker's start (src/net/listeners.ts): a late failure is said once.
      void all[0]?.listening.catch((err: unknown) => log.error(err instanceof Error ? err.message : String(err)))
      return {
        all,
        urls,
        handOver: (emit) => {
          newMaster = spawnNewMaster(opened, emit)
          return newMaster
        },
      }
    }),
  )
}

const isAlive = (child: ChildProcess | undefined) =>
  child !== undefined && child.exitCode === null && child.signalCode === null
