// The command line, derived from the settings registry: `corral [OPTIONS] APP`.
// Hand-written rather than effect/cli so flags can follow gunicorn exactly
// (effect/cli reserves -v and wants every boolean to have a default).

import { flagsLabel, registry, type Settings } from './registry.ts'
import { defaults, fromString, resolveSettings } from './resolve.ts'
import { SECTIONS, type SettingSpec } from './setting-spec.ts'
import { closest } from './suggest.ts'

export type ParsedArgs =
  | { readonly ok: true; readonly settings: Settings; readonly app: string | undefined }
  | { readonly ok: false; readonly errors: string[] }

const byFlag: ReadonlyMap<string, SettingSpec> = new Map(registry.flatMap((s) => s.flags.map((f) => [f, s] as const)))
const longFlags = [...byFlag.keys()].filter((f) => f.startsWith('--'))

const NEGATIVE_NUMBER = /^-\d/

// An argument that looks like an option cannot be a value: `-b -w 2` is a
// missing address, not the address "-w". Negative numbers are still values so
// that `-t -1` is reported as a bad timeout rather than a missing one.
const looksLikeOption = (arg: string) => arg.length > 1 && arg.startsWith('-') && !NEGATIVE_NUMBER.test(arg)

/** What an argument list says, before any resolution: values by setting name, positionals, syntax errors. */
/** A command line with no module to serve, said one way wherever it is found. */
export const MISSING_APP = 'missing APP (the module to serve, e.g. app.ts or app.ts:handler)'

export interface ScannedArgs {
  readonly values: Record<string, unknown>
  readonly positionals: string[]
  readonly errors: string[]
}

export function parseArgs(argv: readonly string[], env: NodeJS.ProcessEnv): ParsedArgs {
  const { values, positionals, errors } = scanArgs(argv)
  const resolution = resolveSettings([{ values, label: flagsLabel }], env)
  if (!resolution.ok) errors.push(...resolution.errors)

  const [app, ...extra] = positionals
  // --help and --version answer even when the rest of the line is wrong
  // (a stray WEB_CONCURRENCY should not hide the help).
  const help = values['help'] === true
  const version = values['version'] === true
  if (help || version) {
    return { ok: true, settings: resolution.ok ? resolution.settings : { ...defaults(), help, version }, app }
  }
  for (const e of extra) errors.push(`unexpected argument ${JSON.stringify(e)}: only one APP can be given`)
  if (app === undefined) errors.push(MISSING_APP)

  if (errors.length > 0 || !resolution.ok) return { ok: false, errors }
  return { ok: true, settings: resolution.settings, app }
}

/** Reads flags and positionals from an argument list (argv, CORRAL_CMD_ARGS) without resolving them. */
export function scanArgs(argv: readonly string[]): ScannedArgs {
  const errors: string[] = []
  const values: Record<string, unknown> = {}
  const positionals: string[] = []

  const set = (s: SettingSpec, text: string | true) => {
    if (text === true) values[s.name] = true
    else if (s.type === 'list') values[s.name] = [...((values[s.name] as string[] | undefined) ?? []), text]
    else values[s.name] = fromString(s, text)
  }

  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? ''
    if (arg === '--') {
      positionals.push(...argv.slice(i + 1))
      break
    }
    if (arg.startsWith('--')) {
      const eq = arg.indexOf('=')
      const flag = eq < 0 ? arg : arg.slice(0, eq)
      const s = byFlag.get(flag)
      if (s === undefined) {
        const meant = closest(flag, longFlags)
        errors.push(`unknown option ${flag}${meant === undefined ? '' : ` (did you mean ${meant}?)`}`)
        // `--wrokers 3 app.ts`: the 3 belongs to the misspelt flag, not a second APP.
        const next = argv[i + 1]
        if (
          eq < 0 &&
          meant !== undefined &&
          byFlag.get(meant)?.type !== 'boolean' &&
          next !== undefined &&
          !looksLikeOption(next)
        )
          i++
        continue
      }
      if (s.type === 'boolean') {
        if (eq >= 0) errors.push(`${flag} takes no value`)
        else set(s, true)
        continue
      }
      if (eq >= 0) {
        set(s, arg.slice(eq + 1))
        continue
      }
      const next = argv[i + 1]
      if (next === undefined || looksLikeOption(next)) errors.push(`missing value for ${flag}`)
      else {
        set(s, next)
        i++
      }
      continue
    }
    if (arg.length > 1 && arg.startsWith('-')) {
      // A cluster of short flags: -hv, -w2, -w=2, -cw 2.
      for (let j = 1; j < arg.length; j++) {
        const flag = `-${arg[j]}`
        const s = byFlag.get(flag)
        if (s === undefined) {
          errors.push(`unknown option ${flag}${arg.length > 2 ? ` in ${arg}` : ''}`)
          break
        }
        if (s.type === 'boolean') {
          set(s, true)
          continue
        }
        const rest = arg.slice(j + 1)
        if (rest !== '') set(s, rest.startsWith('=') ? rest.slice(1) : rest)
        else {
          const next = argv[i + 1]
          if (next === undefined || looksLikeOption(next)) errors.push(`missing value for ${flag}`)
          else {
            set(s, next)
            i++
          }
        }
        break
      }
      continue
    }
    positionals.push(arg)
  }
  return { values, positionals, errors }
}

/** The lines a usage error prints to stderr (newline-terminated); the CLI then exits 2. */
export function usageError(errors: readonly string[]): string {
  return `${errors.map((e) => `corral: error: ${e}\n`).join('')}Try 'corral --help' for more information.\n`
}

const WIDTH = 80
const FLAG_COLUMN = 28

function wrap(text: string, indent: number, firstLineUsed: number): string {
  const lines: string[] = []
  let line = ''
  let room = WIDTH - firstLineUsed
  for (const word of text.split(' ')) {
    if (line !== '' && line.length + 1 + word.length > room) {
      lines.push(line)
      line = word
      room = WIDTH - indent
    } else line = line === '' ? word : `${line} ${word}`
  }
  lines.push(line)
  return lines.join(`\n${' '.repeat(indent)}`)
}

function firstSentence(doc: string): string {
  // Not at an abbreviation: "e.g. ECDHE+AESGCM" goes on.
  const end = doc.search(/(?<!\b(?:e\.g|i\.e|etc))\.(\s|$)/)
  return end < 0 ? doc : doc.slice(0, end + 1)
}

function defaultText(s: SettingSpec): string | undefined {
  if (s.defaultDoc !== undefined) return s.defaultDoc
  if (s.type === 'boolean' || typeof s.default === 'function') return undefined
  const d = s.default
  return Array.isArray(d) ? d.join(' ') : String(d)
}

function helpEntry(s: SettingSpec): string {
  const flags = s.meta === undefined ? s.flags.join(', ') : `${s.flags.join(', ')} ${s.meta}`
  const parts = [firstSentence(s.doc)]
  if (s.choices !== undefined && s.type === 'enum') parts.push(`One of: ${s.choices.join(', ')}.`)
  if (s.type === 'list') parts.push('Repeatable.')
  const d = defaultText(s)
  if (d !== undefined) parts.push(`[default: ${d}]`)
  const head = `  ${flags}`
  const text = parts.join(' ')
  if (head.length + 2 <= FLAG_COLUMN) return head.padEnd(FLAG_COLUMN) + wrap(text, FLAG_COLUMN, FLAG_COLUMN)
  return `${head}\n${' '.repeat(FLAG_COLUMN)}${wrap(text, FLAG_COLUMN, FLAG_COLUMN)}`
}

/** `corral --help`, newline-terminated. */
export function helpText(): string {
  const out = [
    'usage: corral [OPTIONS] APP',
    '',
    'Serve APP with a master process and a pool of worker processes.',
    'APP is a module path, optionally path:exportName (default export otherwise).',
  ]
  for (const section of SECTIONS) {
    // Hooks have no flags: they are set in a config file only.
    const entries = registry.filter((s) => s.section === section && s.flags.length > 0)
    if (entries.length === 0) continue
    out.push('', `${section}:`, ...entries.map(helpEntry))
  }
  return `${out.join('\n')}\n`
}
