// $NOTIFY_SOCKET (src/master/systemd-notify.ts): systemd hears of
// readiness, reloads and stops from the chart's steps. It starts before the
// hooks and the app's preload, so that watchdog pings go out while they run;
// messages still queued go out before the master's log closes.
import * as Effect from 'effect/Effect'
import * as Layer from 'effect/Layer'
import { createSystemdNotify, followMaster } from '../systemd-notify.ts'
import { Chart } from './chart.ts'
import { MasterConfig } from './config.ts'

export const systemdLayer = Layer.effectDiscard(
  Effect.gen(function* () {
    const { log } = yield* MasterConfig
    const chart = yield* Chart
    const systemd = yield* Effect.acquireRelease(
      Effect.sync(() => createSystemdNotify({ log })),
      (notify) => Effect.promise(() => notify.close()),
    )
    chart.observe(followMaster(systemd))
  }),
)
