// --print-config: every effective setting, its value and where it came from.
import { registry, type Settings } from './registry.ts'
import { sourcesOf } from './sources.ts'

/** One line per setting a server runs with: name, value, source. */
export function formatPrintConfig(settings: Settings): string {
  const sources = sourcesOf(settings)
  const rows = registry
    .filter((s) => !s.invocationOnly)
    .map(
      (s) =>
        [s.name, showValue((settings as Record<string, unknown>)[s.name]), sources?.[s.name] ?? 'default'] as const,
    )
  const nameWidth = Math.max(...rows.map((r) => r[0].length))
  const valueWidth = Math.min(40, Math.max(...rows.map((r) => r[1].length)))
  return rows.map(([n, v, src]) => `${`${n.padEnd(nameWidth)}  ${v.padEnd(valueWidth)}  ${src}`.trimEnd()}\n`).join('')
}

/** A value as a person reads it in a listing or a log line: JSON, a function by name, (none). */
export function showValue(v: unknown): string {
  if (v === undefined) return '(none)'
  if (typeof v === 'function') return `[function${v.name ? ` ${v.name}` : ''}]`
  return JSON.stringify(v) ?? String(v)
}
