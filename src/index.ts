// What `import … from 'corral'` gives a config file and an app: types,
// dirty() for the dirty pool, and nothing that loads the server (type-only
// imports are erased).
import type { CommandLineOnly, SettingsInput } from './config/registry.ts'

/** A config file's default export: any settings, camelCase, as in spec/settings.md. */
export type Config = Partial<Omit<SettingsInput, CommandLineOnly>>

/**
 * Returns its argument: it exists for the types, so an editor completes the
 * setting names and flags a typo or a wrong type.
 *
 * ```ts
 * // corral.config.ts
 * import { defineConfig } from 'corral'
 * export default defineConfig({ workers: 4, bind: ['0.0.0.0:8000'] })
 * ```
 */
export function defineConfig(config: Config): Config {
  return config
}

// The dirty pool (spec/dirty.md): calls from an HTTP worker to the apps of --dirty-app.
export { dirty, DirtyError } from './dirty/client.ts'
export type { DirtyApp, DirtyCallOptions } from './dirty/client.ts'
export type { DirtyErrorCode } from './dirty/protocol.ts'

// CommandLineOnly: the settings only the command line (or CORRAL_CMD_ARGS)
// sets, derived from their registry entries; a config file holding one is an error.
export type { CommandLineOnly, SettingsInput }
// Server hooks: what each hook is given (spec/hooks.md).
export type {
  AbortedWorker,
  DirtyWorkerInfo,
  ExitedDirtyWorker,
  ExitedWorker,
  HookName,
  Hooks,
  Server,
  ServerInfo,
  ServerSettings,
  Worker,
  WorkerInfo,
} from './hooks/hooks.ts'
