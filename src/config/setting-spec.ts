// What one entry of the settings registry (src/config/registry.ts) holds.
// Every fact about a setting is a field of its entry: how it is written
// (flags, env, meta), where it may be set (cliOnly), whether it is a switch of one invocation (invocationOnly), what it accepts (type,
// schema), what a HUP does with it (onHup) and its documentation. The
// argument parser, --help, spec/settings.md, validation, the config-file
// loader and the HUP reloader all read them from the entry.
//
// A module of its own, importing nothing at run time, so that the value
// table (src/config/server-settings.ts) and the hooks' entries
// (src/config/hook-settings.ts) can both be typed by it without importing
// each other or the registry that joins them.
import type * as Schema from 'effect/Schema'

/** 'hook': a function, set only in a config file (no flags). */
type SettingType = 'int' | 'number' | 'string' | 'boolean' | 'list' | 'enum' | 'hook'

/** Help groups settings by section, in this order. */
export const SECTIONS = [
  'Config',
  'Server',
  'TLS',
  'Worker processes',
  'Security',
  'Logging',
  'Process',
  'Debugging',
  'Server hooks',
  'Help',
] as const
type Section = (typeof SECTIONS)[number]

/**
 * `C` is the entry's `cliOnly` as written (true, or false when left out), so
 * that the type of a config file (src/index.ts) can leave those settings out.
 */
export interface SettingSpec<
  N extends string = string,
  S extends Schema.Top = Schema.Top,
  C extends boolean = boolean,
> {
  /** camelCase key, as in a config file. */
  readonly name: N
  /** Short flag first when there is one: `['-w', '--workers']`. */
  readonly flags: readonly string[]
  /** An env var that, when set, replaces the default (e.g. WEB_CONCURRENCY). */
  readonly env?: string
  /** Only on the command line and in CORRAL_CMD_ARGS: not a config-file key. */
  readonly cliOnly?: C
  /**
   * What a HUP does with a changed value. 'applied': workers started from
   * then on get it (workers, timeout and gracefulTimeout reach the master
   * machine too, which keeps each running worker's heartbeat timeout as it
   * was started). 'kept': the master applies it once at start (listeners,
   * pidfile, process identity) or it is about this invocation; a changed
   * value is logged and the one in force stays.
   */
  readonly onHup: 'applied' | 'kept'
  /**
   * A switch that makes this invocation do something other than serve, then
   * exit (--help, --print-config): not something a server runs with.
   * --print-config and `ctl show config` leave it out, and a HUP never warns
   * that a change to it waits for a restart.
   */
  readonly invocationOnly?: true
  readonly section: Section
  /** Value placeholder in help; absent for booleans. */
  readonly meta?: string
  /** How a string (argv, env) becomes a value; 'list' flags repeat and collect. */
  readonly type: SettingType
  readonly choices?: readonly string[]
  /** In the encoded form a user would write; a function is evaluated per resolution. */
  readonly default: S['Encoded'] | ((env: NodeJS.ProcessEnv) => S['Encoded'])
  /** Describes a computed default in help, where the value itself would mislead. */
  readonly defaultDoc?: string
  /** The environment variable a computed default is made from, when set: named in errors and sources. */
  readonly defaultEnv?: string
  readonly schema: S
  /** First sentence is the help line; the whole paragraph is the reference. */
  readonly doc: string
}

/** An entry, typed so that the registry keeps its name, schema and cliOnly literally. */
export function setting<const N extends string, S extends Schema.Top, const C extends boolean = false>(
  spec: SettingSpec<N, S, C>,
): SettingSpec<N, S, C> {
  return spec
}

/**
 * A paragraph written over several source lines: each line break, with the
 * indentation around it, becomes one space, and the ends are trimmed. What
 * is interpolated is kept as it is. Docs are written with it so that they
 * read as text in the source and stay within its 120 columns.
 */
export function prose(strings: TemplateStringsArray, ...values: readonly unknown[]): string {
  const lines = strings.map((s) => s.replace(/\s*\n\s*/g, ' '))
  return String.raw({ raw: lines }, ...values).trim()
}
