// The settings registry: every setting corral has, one entry each (what an
// entry holds: src/config/setting-spec.ts). The settings with values are
// listed in src/config/server-settings.ts, the server hooks in
// src/config/hook-settings.ts; this module joins them and derives what the
// rest of the config layer needs: the Settings type and schema, the names,
// the config-file keys. The argument parser and --help
// (src/config/command-line.ts), resolution (src/config/resolve.ts), the
// sources (src/config/sources.ts, config-file.ts), --print-config
// (print-config.ts), HUP (reload.ts) and spec/settings.md (scripts/settings-doc.ts) all read it.
import * as Schema from 'effect/Schema'
import { hookSettings } from './hook-settings.ts'
import { serverSettings } from './server-settings.ts'
import type { SettingSpec } from './setting-spec.ts'

export const registry = [
  ...serverSettings,
  // Server hooks (src/hooks/hooks.ts, spec/hooks.md): functions, in a config file only.
  ...hookSettings,
] as const

type Registry = typeof registry
export type SettingName = Registry[number]['name']

type Fields = { readonly [S in Registry[number] as S['name']]: S['schema'] }

/** Every setting's schema, one field each: resolution decodes the merged sources with it (src/config/resolve.ts). */
export const SettingsSchema = Schema.Struct(
  Object.fromEntries(registry.map((s) => [s.name, s.schema])) as unknown as Fields,
)
/** The validated settings object: ServerSettings and the hooks. */
export type Settings = typeof SettingsSchema.Type
/** Settings as a user writes them. */
export type SettingsInput = typeof SettingsSchema.Encoded

/** Settings only the command line (or CORRAL_CMD_ARGS) sets: the entries marked `cliOnly: true`. */
export type CommandLineOnly = Extract<Registry[number], { readonly cliOnly?: true }>['name']

/** Keys a config file may hold: every setting not marked command-line only. */
export const CONFIG_KEYS: readonly string[] = registry.filter((s) => !s.cliOnly).map((s) => s.name)

const byName: ReadonlyMap<string, SettingSpec> = new Map(registry.map((s) => [s.name, s]))

export function findSetting(name: string): SettingSpec | undefined {
  return byName.get(name)
}

/** `-w/--workers`: how errors name a setting that came from the command line. */
export function flagsLabel(s: SettingSpec): string {
  return s.flags.join('/')
}
