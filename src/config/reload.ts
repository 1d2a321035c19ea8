// HUP: the settings read again from every source (src/config/sources.ts),
// checked against this system as at start (src/config/system-checks.ts),
// and compared with those in force: what new workers get is logged, and a
// change to a setting applied only at start is put back, with a warning.
import type { Logger } from '../logging/log.ts'
import { showValue } from './print-config.ts'
import { registry, type Settings } from './registry.ts'
import { loadSettings, sourcesOf, withSources, type Loaded, type SourcesInput } from './sources.ts'
import { checkReloadedSettings } from './system-checks.ts'

/**
 * The answer to a HUP's read, as the master chart takes it (its
 * SETTINGS_READ event): the settings its reload starts with, or why the
 * reload is not started at all.
 */
type SettingsRead = { readonly settings: Settings } | { readonly refused: readonly string[] }

/** Re-reads the settings against those in force (the master's, which a reload may have put back). */
export type SettingsReloader = (inForce: Settings, log: Logger) => Promise<SettingsRead>

/**
 * What the master calls on HUP: re-reads the config file (the same one as at
 * start, or one that has appeared in the working directory) and
 * CORRAL_CMD_ARGS over the same command line. Sources that have become
 * invalid, or settings that name what this system does not have (a missing
 * --certfile, an unknown --user), refuse the reload with every problem;
 * the settings in force stay.
 */
export function createSettingsReloader(input: SourcesInput, first: Extract<Loaded, { ok: true }>): SettingsReloader {
  let configFile = first.configFile
  return async (current, log) => {
    let next: Loaded
    try {
      next = await loadSettings(input, { fresh: true, configFile })
    } catch (err) {
      // loadSettings reports problems as values; this is a bug, not bad input.
      log.exception('Reload: reading the settings failed', err)
      return { refused: ['reading the settings failed (see the error above)'] }
    }
    if (!next.ok) return { refused: next.errors }
    configFile = next.configFile
    const applied: Record<string, unknown> = { ...next.settings }
    const sources: Record<string, string> = { ...sourcesOf(next.settings) }
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
        if (!s.invocationOnly)
          log.warning(
            `Reload: ${s.name} changed (${showValue(before)} -> ${showValue(after)}) but is applied only at start; restart corral to apply it`,
          )
        applied[s.name] = before
        sources[s.name] = sourcesOf(current)?.[s.name] ?? 'default'
      } else changes.push(`${s.name} ${showValue(before)} -> ${showValue(after)}`)
    }
    const settings = withSources(applied as Settings, sources as Record<keyof Settings, string>)
    // The checks made at start, on what new workers would get (the kept settings put back).
    const problems = checkReloadedSettings(settings, input.cwd)
    if (problems.length > 0) return { refused: problems }
    log.info(changes.length === 0 ? 'Reload: settings unchanged' : `Reload: new workers get ${changes.join(', ')}`)
    return { settings }
  }
}
