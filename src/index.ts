// What `import … from 'corral'` gives a config file and an app: types,
// dirty() for the dirty pool, and nothing that loads the server (type-only
// imports are erased).
import type { CommandLineOnly, SettingsInput } from './config/registry.ts'
import type { StashStats, StashTable } from './stash/client.ts'

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

// The stash (spec/stash.md): tables shared by every worker, kept by the master.
// The client is loaded on the first call, so an app that never uses it (and
// a config file) loads nothing for it.
export type { SetOptions, StashError, StashErrorCode, StashStats, StashTable } from './stash/client.ts'

type StashClient = ReturnType<typeof import('./stash/client.ts').stashClient>
let client: Promise<StashClient> | undefined
const connected = () => {
  client ??= import('./stash/client.ts').then((m) => m.stashClient())
  return client
}
const tables = new Map<string, StashTable>()
const TABLE_OPS = ['get', 'set', 'delete', 'has', 'keys', 'clear', 'incr'] as const

export const stash = {
  /** The table named `name`, made on its first write: `await stash.table('flags').get('beta')`. */
  table(name: string): StashTable {
    const known = tables.get(name)
    if (known) return known
    const lazy = { name } as { -readonly [K in keyof StashTable]: StashTable[K] }
    let real: StashTable | undefined
    for (const op of TABLE_OPS) {
      // The name is checked by the client, so a bad one rejects the call like any bad call.
      lazy[op] = (async (...args: unknown[]) => {
        real ??= (await connected()).table(name)
        return (real[op] as (...a: unknown[]) => Promise<unknown>)(...args)
      }) as never
    }
    if (typeof name === 'string') tables.set(name, lazy)
    return lazy
  },
  /** How full the stash is, and the master's event-loop lag (`reset`: start its histogram afresh). */
  stats: async (options?: { reset?: boolean }): Promise<StashStats> => (await connected()).stats(options),
}
