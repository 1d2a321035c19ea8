// $NOTIFY_SOCKET (src/master/systemd-notify.ts). The service starts first of
// the parts, so that watchdog pings go out while the hooks, the app's
// preload and the listeners start; messages still queued go out before the
// master's log closes. systemdFollowsChart, once the chart exists, tells
// systemd of readiness, reloads and stops from the chart's steps.
import * as Context from 'effect/Context'
import * as Effect from 'effect/Effect'
import * as Layer from 'effect/Layer'
import { createSystemdNotify, followMaster, type SystemdNotify } from '../systemd-notify.ts'
import { Chart } from './chart.ts'
import { MasterConfig } from './config.ts'

export class Systemd extends Context.Service<Systemd, SystemdNotify>()('corral/master/Systemd') {
  static readonly layer = Layer.effect(
    Systemd,
    Effect.gen(function* () {
      const { log } = yield* MasterConfig
      return yield* Effect.acquireRelease(
        Effect.sync(() => createSystemdNotify({ log })),
        (notify) => Effect.promise(() => notify.close()),
      )
    }),
  )
}

export const systemdFollowsChart = Layer.effectDiscard(
  Effect.gen(function* () {
    const chart = yield* Chart
    chart.observe(followMaster(yield* Systemd))
  }),
)
