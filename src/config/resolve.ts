// Resolution: the values of every source (src/config/sources.ts), layered over
// env-var defaults over the registry's defaults, validated at once; a problem
// is one line that names where the bad value came from.
import * as Result from 'effect/Result'
import * as Schema from 'effect/Schema'
import * as SchemaIssue from 'effect/SchemaIssue'
import { findSetting, flagsLabel, registry, SettingsSchema, type SettingName, type Settings } from './registry.ts'
import type { SettingSpec } from './setting-spec.ts'
import { suggestion } from './suggest.ts'

// ---------------------------------------------------------------------------
// Strings to values

const INT = /^[+-]?\d+$/
const TRUE = new Set(['1', 'true', 'yes', 'on'])
const FALSE = new Set(['0', 'false', 'no', 'off', ''])

/**
 * Turns a string from argv or the environment into the value the schema
 * expects. Text that cannot be converted is passed through unchanged so the
 * schema rejects it with its own "expected …, got …" message.
 */
export function fromString(s: SettingSpec, text: string): unknown {
  switch (s.type) {
    case 'int':
      return INT.test(text) ? Number(text) : text
    case 'number': {
      const n = Number(text)
      return text.trim() !== '' && Number.isFinite(n) ? n : text
    }
    case 'boolean': {
      const t = text.toLowerCase()
      return TRUE.has(t) ? true : FALSE.has(t) ? false : text
    }
    case 'list':
      return [text]
    case 'string':
    case 'enum':
    case 'hook':
      return text
  }
}

// ---------------------------------------------------------------------------
// Resolution: layers of values over env-var defaults over registry defaults

/** A source of values, e.g. the command line; later layers override earlier ones. */
export interface Layer {
  readonly values: Readonly<Record<string, unknown>>
  /** Names a setting in error messages, e.g. `-w/--workers` or `corral.config.ts: workers`. */
  readonly label: (s: SettingSpec) => string
  /** Names a key that is not a setting, e.g. `corral.config.ts: unknown setting "wrokers"`. */
  readonly unknownKey?: (key: string) => string
  /** Where its values come from, for --print-config: `command line`, `config file corral.config.ts`. */
  readonly source?: string
}

export type Resolution =
  | {
      readonly ok: true
      readonly settings: Settings
      /** Where each setting's value came from: `default`, `env WEB_CONCURRENCY`, or a layer's source. */
      readonly sources: Readonly<Record<SettingName, string>>
    }
  | { readonly ok: false; readonly errors: string[] }

const SETTING_NAMES: readonly string[] = registry.map((s) => s.name)

const decode = Schema.decodeUnknownResult(SettingsSchema, {
  errors: 'all',
  onExcessProperty: 'error',
  reportInput: true,
})

function showInput(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v)
  // Not its source text: a config file's function may span many lines.
  if (typeof v === 'function') return 'a function'
  if (typeof v === 'object' && v !== null) {
    try {
      return JSON.stringify(v)
    } catch {
      return String(v)
    }
  }
  return String(v)
}

// The built-in formatter ignores `expected` on a type mismatch (it says
// "Expected number"); the setting's own phrase says more.
const formatIssues = SchemaIssue.makeFormatterStandardSchemaV1({
  leafHook: (issue) => {
    const expected = issue._tag === 'InvalidType' ? issue.ast.annotations?.['expected'] : undefined
    if (typeof expected !== 'string') return SchemaIssue.defaultLeafHook(issue)
    return SchemaIssue.hasInput(issue) ? `expected ${expected}, got ${showInput(issue.input)}` : `expected ${expected}`
  },
})

const lowerFirst = (s: string) => s.charAt(0).toLowerCase() + s.slice(1)

/**
 * Resolves settings from layers (lowest priority first) over env-var
 * defaults over registry defaults, validating everything at once: each
 * problem is one line naming where the bad value came from.
 */
export function resolveSettings(layers: readonly Layer[], env: NodeJS.ProcessEnv = {}): Resolution {
  // No prototype: a config file's "__proto__" key must stay a (rejected) key.
  const merged: Record<string, unknown> = Object.create(null)
  const labelOf = new Map<string, (s: SettingSpec) => string>()
  const unknownKeyLabel = new Map<string, string>()
  const sources: Record<string, string> = {}

  for (const s of registry) {
    const fromEnv = s.env === undefined ? undefined : env[s.env]
    if (s.env !== undefined && fromEnv !== undefined && fromEnv !== '') {
      const name = s.env
      merged[s.name] = fromString(s, fromEnv)
      labelOf.set(s.name, () => name)
      sources[s.name] = `env ${name}`
    } else {
      merged[s.name] = typeof s.default === 'function' ? s.default(env) : s.default
      // A default made from the environment ($PORT) names it: that is what to fix.
      const from = s.defaultEnv !== undefined && env[s.defaultEnv] ? s.defaultEnv : undefined
      labelOf.set(s.name, (spec) =>
        from === undefined ? `default for ${flagsLabel(spec)}` : `$${from} (the default for ${flagsLabel(spec)})`,
      )
      sources[s.name] = from === undefined ? 'default' : `default, from env ${from}`
    }
  }
  for (const layer of layers) {
    for (const [key, value] of Object.entries(layer.values)) {
      merged[key] = value
      if (findSetting(key) !== undefined) {
        labelOf.set(key, layer.label)
        sources[key] = layer.source ?? 'command line'
      } else
        unknownKeyLabel.set(
          key,
          layer.unknownKey?.(key) ?? `unknown setting ${JSON.stringify(key)}${suggestion(key, SETTING_NAMES)}`,
        )
    }
  }

  const result = decode(merged)
  if (Result.isSuccess(result))
    return { ok: true, settings: result.success, sources: sources as Record<SettingName, string> }

  const lines = new Set<string>()
  for (const { path, message } of formatIssues(result.failure.issue).issues) {
    const key = String(path?.[0])
    const spec = findSetting(key)
    const unknown = unknownKeyLabel.get(key)
    if (spec === undefined) lines.add(unknown ?? `${key}: ${lowerFirst(message)}`)
    else lines.add(`${(labelOf.get(key) ?? flagsLabel)(spec)}: ${lowerFirst(message)}`)
  }
  return { ok: false, errors: [...lines] }
}

/**
 * The registry defaults alone, ignoring the environment. Throws only if the
 * registry itself is wrong, which a test catches.
 */
export function defaults(): Settings {
  const r = resolveSettings([])
  if (!r.ok) throw new Error(`invalid default settings:\n${r.errors.join('\n')}`)
  return r.settings
}
