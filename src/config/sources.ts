// The configuration sources and their precedence, lowest to highest:
//
//   registry defaults (and env-var defaults such as WEB_CONCURRENCY)
//   < the config file (-c/--config, else the one ./corral.config.{ts,mts,cts,js,mjs,cjs}; none with --no-config)
//   < CORRAL_CMD_ARGS (parsed like argv, with shell-like quoting)
//   < the command line
//
// Everything is validated at once by resolveSettings (src/config/resolve.ts): each
// problem is one line naming where the bad value came from. The same loading
// runs again on HUP (reloadSettings); a file that has become invalid is
// reported and the settings in force stay.
import { statSync } from 'node:fs'
import { resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import { MISSING_APP, scanArgs, type ScannedArgs } from './command-line.ts'
import type { Logger } from '../logging/log.ts'
import { locateSyntaxError } from '../process/syntax-error.ts'
import { importUserModule, typeScriptProblem } from '../process/user-modules.ts'
import { CONFIG_KEYS, findSetting, flagsLabel, registry, type SettingName, type Settings } from './registry.ts'
import { defaults, resolveSettings, type Layer } from './resolve.ts'
import { suggestion } from './suggest.ts'

export const CMD_ARGS_ENV = 'CORRAL_CMD_ARGS'
/** Looked for in the working directory when neither -c/--config nor --no-config is given; two found is an error. */
const CONFIG_FILE_NAMES = ['ts', 'mts', 'cts', 'js', 'mjs', 'cjs'].map((ext) => `corral.config.${ext}`)
/** A config file still loading after this long (a top-level await that never settles) is an error, not a hang. */
const CONFIG_LOAD_TIMEOUT_MS = 10_000

export interface SourcesInput {
  readonly argv: readonly string[]
  readonly env: NodeJS.ProcessEnv
  /** Where the default config file is looked for and relative paths start. */
  readonly cwd: string
}

export type Loaded =
  | {
      readonly ok: true
      readonly settings: Settings
      /** Where each value came from: `default`, `env VAR`, `config file PATH`, `CORRAL_CMD_ARGS`, `command line`. */
      readonly sources: Readonly<Record<SettingName, string>>
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
      settings: { ...base.settings, help, version },
      sources: base.sources,
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
  return { ok: true, settings: resolution.settings, sources: resolution.sources, app, configFile }
}

function defaultSources(): Record<SettingName, string> {
  return Object.fromEntries(registry.map((s) => [s.name, 'default'])) as Record<SettingName, string>
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

/** The one config file in the working directory, if any; two is an error (which one counts would be a guess). */
function findDefaultConfig(cwd: string): { readonly file: string | undefined } | { readonly error: string } {
  const present = CONFIG_FILE_NAMES.filter((name) => {
    try {
      return statSync(resolve(cwd, name)).isFile()
    } catch {
      return false
    }
  })
  if (present.length <= 1) return { file: present[0] }
  return {
    error: `${present.slice(0, -1).join(', ')} and ${present.at(-1)}: more than one config file in the working directory; remove one, or choose with -c/--config or --no-config`,
  }
}

// ---------------------------------------------------------------------------
// The config file

type FileResult = { readonly error: string } | { readonly values: Record<string, unknown>; readonly errors: string[] }

let importCount = 0

async function readConfigFile(path: string, shown: string, missing: string, fresh: boolean): Promise<FileResult> {
  try {
    if (!statSync(path).isFile()) return { error: `${shown}: the config file is not a file` }
  } catch {
    return { error: missing }
  }
  const typeScript = typeScriptProblem(path, process.cwd())
  if (typeScript !== undefined) return { error: `${shown}: ${typeScript}` }
  // ES modules are cached by URL: a HUP imports the file under a new one.
  // (Modules it imports itself stay cached; see spec/settings.md.)
  const query = fresh ? `?reload=${++importCount}` : ''
  let mod: { default?: unknown }
  try {
    mod = await withTimeout(importUserModule(path, query) as Promise<{ default?: unknown }>, CONFIG_LOAD_TIMEOUT_MS)
  } catch (err) {
    return { error: `${shown}: failed to load: ${describeLoadError(err, path)}${commonJsHint(err, path)}` }
  }
  const config = mod.default
  if (config === undefined)
    return { error: `${shown}: no default export (write: export default defineConfig({ ... }))` }
  if (typeof config !== 'object' || config === null || Array.isArray(config)) {
    return { error: `${shown}: the default export must be an object of settings, got ${describeValue(config)}` }
  }
  const values: Record<string, unknown> = Object.create(null)
  const errors: string[] = []
  for (const [key, value] of Object.entries(config)) {
    const spec = findSetting(key)
    if (spec?.cliOnly)
      errors.push(`${shown}: ${key} cannot be set in a config file, only on the command line (${flagsLabel(spec)})`)
    else values[key] = value
  }
  return { values, errors }
}

class LoadTimeout extends Error {}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new LoadTimeout(`still loading after ${ms / 1000} s (a top-level await that never settles?)`)),
      ms,
    )
  })
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer))
}

/** The error's message, and where in the config file it happened when the stack says so. */
function describeLoadError(err: unknown, path: string): string {
  if (!(err instanceof Error)) return `threw ${describeValue(err)}`
  // An ES module's syntax error names no line by itself (src/process/syntax-error.ts).
  const where = locateSyntaxError(err, path)
  if (where !== undefined) return where
  const message = err.message.split('\n')[0] || err.name
  const stack = err.stack ?? ''
  const url = pathToFileURL(path).href
  // A syntax error's stack starts with "PATH:LINE"; a thrown error has a frame in the file.
  const at =
    stack.match(new RegExp(`^${escapeRegExp(path)}:(\\d+)`, 'm'))?.[1] ??
    stack.match(new RegExp(`${escapeRegExp(url)}(?:\\?[^:)]*)?:(\\d+)`))?.[1]
  return at === undefined ? message : `${message} (line ${at})`
}

/** ES module syntax in a .js file that package.json makes CommonJS (npm init's "type": "commonjs"). */
function commonJsHint(err: unknown, path: string): string {
  const moduleSyntax = /Cannot use import statement outside a module|Unexpected token 'export'/
  if (!path.endsWith('.js') || !(err instanceof SyntaxError) || !moduleSyntax.test(err.message)) return ''
  return '; a .js file is CommonJS in this project: use require() and module.exports, or rename it to .mjs or .ts'
}

const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')

function describeValue(v: unknown): string {
  if (v === null) return 'null'
  if (Array.isArray(v)) return 'an array'
  if (typeof v === 'function') return 'a function'
  if (typeof v === 'string') return JSON.stringify(v)
  return typeof v === 'object' ? 'an object' : `${typeof v} ${String(v)}`
}

// ---------------------------------------------------------------------------
// CORRAL_CMD_ARGS

/**
 * Splits a command line the way a POSIX shell splits words, without
 * expansions: whitespace separates, '…' is literal, "…" allows \" \\ \$ \`,
 * a backslash outside quotes escapes the next character. Returns the reason
 * as a string when the text cannot be split (an unterminated quote).
 */
export function splitShellWords(text: string): string[] | string {
  const words: string[] = []
  let word = ''
  let inWord = false
  let i = 0
  while (i < text.length) {
    const c = text[i]!
    if (c === "'") {
      const end = text.indexOf("'", i + 1)
      if (end < 0) return 'unterminated single quote'
      word += text.slice(i + 1, end)
      inWord = true
      i = end + 1
    } else if (c === '"') {
      inWord = true
      i++
      for (;;) {
        if (i >= text.length) return 'unterminated double quote'
        const d = text[i]!
        if (d === '"') {
          i++
          break
        }
        const next = text[i + 1]
        if (d === '\\' && next !== undefined && '"\\$`\n'.includes(next)) {
          if (next !== '\n') word += next
          i += 2
        } else {
          word += d
          i++
        }
      }
    } else if (c === '\\') {
      const next = text[i + 1]
      if (next === undefined) return 'ends with a lone backslash'
      if (next !== '\n') {
        word += next
        inWord = true
      }
      i += 2
    } else if (/\s/.test(c)) {
      if (inWord) words.push(word)
      word = ''
      inWord = false
      i++
    } else {
      word += c
      inWord = true
      i++
    }
  }
  if (inWord) words.push(word)
  return words
}

// ---------------------------------------------------------------------------
// --print-config

/** Every effective setting, its value and where it came from, one per line. */
export function formatPrintConfig(settings: Settings, sources: Readonly<Record<SettingName, string>>): string {
  const rows = registry
    .filter((s) => s.section !== 'Help')
    .map(
      (s) => [s.name, showValue((settings as Record<string, unknown>)[s.name]), sources[s.name] ?? 'default'] as const,
    )
  const nameWidth = Math.max(...rows.map((r) => r[0].length))
  const valueWidth = Math.min(40, Math.max(...rows.map((r) => r[1].length)))
  return rows.map(([n, v, src]) => `${`${n.padEnd(nameWidth)}  ${v.padEnd(valueWidth)}  ${src}`.trimEnd()}\n`).join('')
}

function showValue(v: unknown): string {
  if (v === undefined) return '(none)'
  if (typeof v === 'function') return `[function${v.name ? ` ${v.name}` : ''}]`
  return JSON.stringify(v) ?? String(v)
}

// ---------------------------------------------------------------------------
// HUP

/** Re-reads the settings against those in force (the master's, which a reload may have put back). */
export type SettingsReloader = (inForce: Settings, log: Logger) => Promise<Settings | undefined>

type Sources = Readonly<Record<SettingName, string>>

// Where each value of a settings object came from, for `corral ctl show
// config`. Keyed by the object itself: the master chart hands back the very
// objects it was given (a reload's, or the previous ones after an abandon),
// so whichever is in force finds its own sources.
const sourcesBySettings = new WeakMap<Settings, Sources>()

/** The sources of settings loaded at start or re-read by a HUP (undefined for any other object). */
export function sourcesOf(settings: Settings): Sources | undefined {
  return sourcesBySettings.get(settings)
}

/**
 * What the master calls on HUP: re-reads the config file (the same one as at
 * start, or one that has appeared in the working directory) and
 * CORRAL_CMD_ARGS over the same command line. Returns the settings new
 * workers get, or undefined when the sources have become invalid (each
 * problem logged on its own line; the settings in force stay).
 */
export function createSettingsReloader(input: SourcesInput, first: Extract<Loaded, { ok: true }>): SettingsReloader {
  let configFile = first.configFile
  sourcesBySettings.set(first.settings, first.sources)
  return async (current, log) => {
    let next: Loaded
    try {
      next = await loadSettings(input, { fresh: true, configFile })
    } catch (err) {
      // loadSettings reports problems as values; this is a bug, not bad input.
      log.exception('Reload: reading the settings failed', err)
      return undefined
    }
    if (!next.ok) {
      for (const e of next.errors) log.error(`Reload: ${e}`)
      log.error('Reload: the settings are unchanged')
      return undefined
    }
    configFile = next.configFile
    const applied: Record<string, unknown> = { ...next.settings }
    const sources: Record<string, string> = { ...next.sources }
    const changes: string[] = []
    for (const s of registry) {
      const before = (current as Record<string, unknown>)[s.name]
      const after = applied[s.name]
      // A hook is a new function at each read: it changed when its source did (it is replaced either way).
      if (
        typeof after === 'function'
          ? String(before) === String(after)
          : JSON.stringify(before) === JSON.stringify(after)
      )
        continue
      if (s.onHup === 'kept') {
        if (s.section !== 'Help' && s.section !== 'Debugging') {
          log.warning(
            `Reload: ${s.name} changed (${showValue(before)} -> ${showValue(after)}) but is applied only at start; restart corral to apply it`,
          )
        }
        applied[s.name] = before
        sources[s.name] = sourcesOf(current)?.[s.name] ?? first.sources[s.name]
      } else changes.push(`${s.name} ${showValue(before)} -> ${showValue(after)}`)
    }
    log.info(changes.length === 0 ? 'Reload: settings unchanged' : `Reload: new workers get ${changes.join(', ')}`)
    sourcesBySettings.set(applied as Settings, sources as Sources)
    return applied as Settings
  }
}
