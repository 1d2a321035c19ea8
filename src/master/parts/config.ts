// What the master was started with, and the settings in force: a HUP's
// reload replaces them (the chart's reloadStarted and reloadAbandoned
// commands), and the hooks, `corral ctl show config` and the next HUP's
// re-read all read them from here.
import * as Context from 'effect/Context'
import type { Settings, SettingName } from '../../config/registry.ts'
import type { SettingsReloader } from '../../config/reload.ts'
import type { Logger } from '../../logging/log.ts'
import type { Statsd } from '../../net/statsd.ts'

export interface MasterConfigShape {
  /** The settings the master started with. */
  readonly settings: Settings
  readonly app: string
  /** --name, else the app. */
  readonly name: string
  readonly log: Logger
  /** --statsd-host (src/net/statsd.ts), when given. */
  readonly statsd: Statsd | undefined
  /** Re-reads and checks the settings on HUP (src/config/reload.ts), against those in force. */
  readonly reloadSettings: SettingsReloader | undefined
  /** Where each of these settings' values came from, for `corral ctl show config`. */
  readonly sourcesOf: ((settings: Settings) => Readonly<Record<SettingName, string>> | undefined) | undefined
  /** The settings in force now. */
  inForce(): Settings
  /** The settings in force from now on. */
  adopt(next: Settings): void
}

export class MasterConfig extends Context.Service<MasterConfig, MasterConfigShape>()('corral/master/MasterConfig') {}

export function masterConfig(given: Omit<MasterConfigShape, 'inForce' | 'adopt'>): MasterConfigShape {
  let inForce = given.settings
  return {
    ...given,
    inForce: () => inForce,
    adopt: (next) => {
      inForce = next
    },
  }
}
