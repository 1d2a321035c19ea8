// The config file: finding the one in the working directory, and importing
// it (again on HUP, under a new URL) into the values of one layer of
// src/config/sources.ts. Every problem is a sentence naming the file.
import { statSync } from 'node:fs'
import { resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import { locateSyntaxError } from '../process/syntax-error.ts'
import { importUserModule, typeScriptProblem } from '../process/user-modules.ts'
import { findSetting, flagsLabel } from './registry.ts'

/** Looked for in the working directory when neither -c/--config nor --no-config is given; two found is an error. */
const CONFIG_FILE_NAMES = ['ts', 'mts', 'cts', 'js', 'mjs', 'cjs'].map((ext) => `corral.config.${ext}`)
/** A config file still loading after this long (a top-level await that never settles) is an error, not a hang. */
const CONFIG_LOAD_TIMEOUT_MS = 10_000

/** The one config file in the working directory, if any; two is an error (which one counts would be a guess). */
export function findDefaultConfig(cwd: string): { readonly file: string | undefined } | { readonly error: string } {
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

type FileResult = { readonly error: string } | { readonly values: Record<string, unknown>; readonly errors: string[] }

let importCount = 0

/**
 * The file's default export as a layer's values. `shown` is how messages
 * name it; `missing` is what to say when it is not there; `fresh` imports
 * it again even if this process has (HUP).
 */
export async function readConfigFile(
  path: string,
  shown: string,
  missing: string,
  fresh: boolean,
): Promise<FileResult> {
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
