// The master's process settings: --chdir, -m/--umask, -e/--env (applied to
// the master, which its workers inherit), -u/-g/--initgroups (checked here,
// applied per worker by src/process/privileges.ts) and --preload. See spec/process.md.
import { statSync } from 'node:fs'
import { resolve } from 'node:path'
import { AppLoadError, loadAppOnce } from '../http/app.ts'
import type { Logger } from '../logging/log.ts'
import { workerCredentials, type PrivilegeSettings } from './privileges.ts'

/**
 * The directory corral was started in, before --chdir: a master started by
 * USR2 starts here too, so relative paths in its argv (the APP, --chdir,
 * --config) mean what they meant the first time.
 */
export const START_CWD = process.cwd()

// ---------------------------------------------------------------------------
// -m/--umask

/**
 * gunicorn's reading of a umask: a number, or a string that is octal when it
 * starts with 0 (`022`, `0o22`), hex with 0x, binary with 0b, else decimal.
 * Returns the mask, or the reason the value is not one.
 */
export function parseUmask(v: unknown): number | string {
  let n: number
  if (typeof v === 'number') n = v
  else if (typeof v !== 'string') return `expected an octal mask such as 022, got ${String(v)}`
  else {
    const t = v.trim()
    if (/^0[0-7]+$/.test(t)) n = parseInt(t.slice(1), 8)
    else if (/^0o[0-7]+$/i.test(t)) n = parseInt(t.slice(2), 8)
    else if (/^0x[0-9a-f]+$/i.test(t)) n = parseInt(t.slice(2), 16)
    else if (/^0b[01]+$/i.test(t)) n = parseInt(t.slice(2), 2)
    else if (/^\d+$/.test(t)) n = Number(t)
    else return `expected an octal mask such as 022 (a leading 0 means octal), got ${JSON.stringify(v)}`
  }
  if (!Number.isInteger(n) || n < 0 || n > 0o777) return `expected a mask from 0 to 0777, got ${JSON.stringify(v)}`
  return n
}

export const umaskProblem = (v: unknown): string | undefined => {
  const r = parseUmask(v)
  return typeof r === 'string' ? r : undefined
}

// ---------------------------------------------------------------------------
// -e/--env

/** `KEY=VALUE` → [KEY, VALUE]; the value may be empty and may hold '='. */
function parseEnvEntry(text: string): [string, string] | string {
  const eq = text.indexOf('=')
  if (eq <= 0) return `expected KEY=VALUE, got ${JSON.stringify(text)}`
  if (text.includes('\0')) return `${JSON.stringify(text)}: an environment variable cannot hold a NUL byte`
  return [text.slice(0, eq), text.slice(eq + 1)]
}

export const envEntryProblem = (text: string): string | undefined => {
  const r = parseEnvEntry(text)
  return typeof r === 'string' ? r : undefined
}

// ---------------------------------------------------------------------------
// Checking and applying

export interface ProcessSettings extends PrivilegeSettings {
  readonly chdir?: string | undefined
  readonly umask?: string | number | undefined
  readonly env?: readonly string[] | undefined
}

/**
 * Problems the settings schema cannot see (the filesystem, this process's
 * privileges, settings that only make sense together): one line each,
 * naming the flag. Relative paths are taken from `cwd`.
 */
export function checkProcessSettings(s: ProcessSettings, cwd = process.cwd()): string[] {
  const errors: string[] = []
  if (s.chdir !== undefined) {
    const dir = resolve(cwd, s.chdir)
    try {
      if (!statSync(dir).isDirectory()) errors.push(`--chdir: ${s.chdir} is not a directory`)
    } catch (err) {
      errors.push(`--chdir: can't use ${s.chdir} (${(err as NodeJS.ErrnoException).code ?? String(err)})`)
    }
  }
  const creds = workerCredentials(s)
  if (!creds.ok) errors.push(...creds.errors)
  return errors
}

/**
 * Makes this process what the settings say, before the master opens
 * anything: the working directory, the umask, the environment (which the
 * workers inherit). Returns the problem when the directory cannot be entered.
 */
export function applyProcessSettings(s: ProcessSettings): string[] {
  if (s.chdir !== undefined) {
    try {
      process.chdir(s.chdir)
    } catch (err) {
      return [`--chdir: can't change to ${s.chdir} (${(err as NodeJS.ErrnoException).code ?? String(err)})`]
    }
  }
  if (s.umask !== undefined) {
    const mask = parseUmask(s.umask)
    if (typeof mask === 'number') process.umask(mask)
  }
  for (const entry of s.env ?? []) {
    const kv = parseEnvEntry(entry)
    if (typeof kv !== 'string') process.env[kv[0]] = kv[1]
  }
  return []
}

// ---------------------------------------------------------------------------
// --preload

/**
 * The master imports the app once, as a worker would, before it binds or
 * spawns anything: a broken app stops corral at once, with one message.
 * Returns false when the app failed to load (the reason is logged).
 */
export async function preloadApp(app: string, log: Logger): Promise<boolean> {
  try {
    await loadAppOnce(app, log)
  } catch (err) {
    if (err instanceof AppLoadError) log.error(`App failed to load: ${err.message}`)
    else log.exception('App failed to load', err)
    return false
  }
  log.info(`Preloaded ${app}`)
  return true
}
