// The configuration sources and their precedence, lowest to highest:
//
//   registry defaults (and env-var defaults such as WEB_CONCURRENCY)
//   < the config file (-c/--config, else the one ./corral.config.{ts,mts,cts,js,mjs,cjs}; none with --no-config)
//   < CORRAL_CMD_ARGS (parsed like argv, with shell-like quoting)
//   < the command line
//
// Everything is validated at once by resolveSettings (src/config/resolve.ts): each
// problem is one line naming where the bad value came from. The same loading
// runs again on HUP (src/config/reload.ts). The settings loaded carry where
// each value came from (sourcesOf), for --print-config and `ctl show config`.
import { resolve } from 'node:path'
import { MISSING_APP, scanArgs, type ScannedArgs } from './command-line.ts'
import { findDefaultConfig, readConfigFile } from './config-file.ts'
import { CONFIG_KEYS, flagsLabel, registry, type SettingName, type Settings } from './registry.ts'
import { defaults, resolveSettings, type Layer } from './resolve.ts'
import { splitShellWords } from './shell-words.ts'
import { suggestion } from './suggest.ts'

export const CMD_ARGS_ENV = 'CORRAL_CMD_ARGS'

/** Where each value came from: `default`, `env VAR`, `config file PATH`, `CORRAL_CMD_ARGS`, `command line`. */
export type Sources = Readonly<Record<SettingName, string>>

// The sources travel inside the settings object they describe, unseen by
// its keys, its spread copies and JSON: whichever object the master chart
// hands back (a reload's, or the previous one after an abandon) has its own.
const SOURCES = Symbol('corral.sources')

/** The settings with their sources attached (a new object; `settings` is left as it is). */
export function withSources(settings: Settings, sources: Sources): Settings {
  return Object.defineProperty({ ...settings }, SOURCES, { value: sources, enumerable: false })
}

/** The sources attached to settings loaded here (undefined for settings made any other way). */
export function sourcesOf(settings: Settings): Sources | undefined {
  return (settings as { readonly [SOURCES]?: Sources })[SOURCES]
}

export interface SourcesInput {
  readonly argv: readonly string[]
  readonly env: NodeJS.ProcessEnv
  /** Where the default config file is looked for and relative paths start. */
  readonly cwd: string
}

export type Loaded =
  | {
      readonly ok: true
      /** With their sources attached (sourcesOf). */
      readonly settings: Settings
      readonly app: string | undefined
      /** The config file read, as given or found; undefined when there is none. */
      readonly configFile: string | undefined
    }
  | { readonly ok: false; readonly errors: string[] }

interface LoadOptions {
  /** Re-import the config file even if this process imported it before (HUP). */
  readonly fresh?: boolean
  /** The file used before: a HUP reads the same one, and its disappearance is an error. */
  readonly configFile?: string
}

/** Resolves the settings from every source; never throws. */
export async function loadSettings(input: SourcesInput, options: LoadOptions = {}): Promise<Loaded> {
  const { argv, env, cwd } = input
  const cli = scanArgs(argv)
  const [app, ...extra] = cli.positionals

  // --help and --version answer even when everything else is wrong,
  // without importing a config file that might throw.
  const help = cli.values['help'] === true
  const version = cli.values['version'] === true
  if (help || version) {
    const r = resolveSettings([{ values: cli.values, label: flagsLabel }], env)
    const base = r.ok ? r : { settings: defaults(), sources: defaultSources() }
    return {
      ok: true,
      settings: withSources({ ...base.settings, help, version }, base.sources),
      app,
      configFile: undefined,
    }
  }

  const errors = [...cli.errors]
  const cmd = scanCmdArgs(env[CMD_ARGS_ENV], errors)

  const layers: Layer[] = []
  const given = stringValue(cli.values['config']) ?? stringValue(cmd.values['config'])
  const noConfig = cli.values['noConfig'] === true || cmd.values['noConfig'] === true
  if (noConfig && given !== undefined) errors.push('--no-config and -c/--config: give one or the other')
  // A HUP reads the file read at start; it searches only when there was none.
  let configFile = noConfig ? undefined : (given ?? options.configFile)
  if (configFile === undefined && !noConfig) {
    const found = findDefaultConfig(cwd)
    if ('error' in found) errors.push(found.error)
    else configFile = found.file
  }
  if (configFile !== undefined) {
    // A file found in the working directory is where the default comes from.
    if (given === undefined) layers.push({ values: { config: configFile }, label: flagsLabel, source: 'default' })
    const missing =
      given !== undefined
        ? `-c/--config: config file not found: ${configFile}`
        : `${configFile}: config file not found (it was read at start)`
    const file = await readConfigFile(resolve(cwd, configFile), configFile, missing, options.fresh ?? false)
    if ('error' in file) errors.push(file.error)
    else {
      errors.push(...file.errors)
      layers.push({
        values: file.values,
        label: (s) => `${configFile}: ${s.name}`,
        unknownKey: (key) => `${configFile}: unknown setting ${JSON.stringify(key)}${suggestion(key, CONFIG_KEYS)}`,
        source: `config file ${configFile}`,
      })
    }
  }
  layers.push({ values: cmd.values, label: (s) => `${CMD_ARGS_ENV}: ${flagsLabel(s)}`, source: CMD_ARGS_ENV })
  layers.push({ values: cli.values, label: flagsLabel, source: 'command line' })

  const resolution = resolveSettings(layers, env)
  if (!resolution.ok) errors.push(...resolution.errors)

  for (const e of extra) errors.push(`unexpected argument ${JSON.stringify(e)}: only one APP can be given`)
  const printing = resolution.ok
    ? resolution.settings.printConfig
    : cli.values['printConfig'] === true || cmd.values['printConfig'] === true
  const needsApp = !printing
  if (app === undefined && needsApp) errors.push(MISSING_APP)

  if (errors.length > 0 || !resolution.ok) return { ok: false, errors: [...new Set(errors)] }
  return { ok: true, settings: withSources(resolution.settings, resolution.sources), app, configFile }
}

function defaultSources(): Sources {
  return Object.fromEntries(registry.map((s) => [s.name, 'default'])) as Sources
}

const stringValue = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined)

function scanCmdArgs(text: string | undefined, errors: string[]): ScannedArgs {
  const none: ScannedArgs = { values: {}, positionals: [], errors: [] }
  if (text === undefined || text.trim() === '') return none
  const words = splitShellWords(text)
  if (typeof words === 'string') {
    errors.push(`${CMD_ARGS_ENV}: ${words}`)
    return none
  }
  const scanned = scanArgs(words)
  errors.push(...scanned.errors.map((e) => `${CMD_ARGS_ENV}: ${e}`))
  for (const p of scanned.positionals)
    errors.push(`${CMD_ARGS_ENV}: unexpected argument ${JSON.stringify(p)}: APP goes on the command line`)
  if (scanned.values['help'] === true || scanned.values['version'] === true) {
    errors.push(`${CMD_ARGS_ENV}: -h/--help and -v/--version belong on the command line`)
  }
  return scanned
}
