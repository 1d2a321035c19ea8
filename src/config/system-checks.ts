// The checks of settings against this system (the files, users and
// directories they name), beyond what their schemas can say. They run at
// start, before anything is bound (src/cli/main.ts), and again on every
// HUP (src/config/reload.ts): a config file that now names a missing
// --certfile refuses the reload with the reason, instead of showing up as
// new workers failing to boot.
import { statSync } from 'node:fs'
import { dirname, resolve } from 'node:path'
import { checkTlsSettings } from '../http/tls.ts'
import { checkProcessSettings } from '../process/process-settings.ts'
import type { Settings } from './registry.ts'

/**
 * What the workers open: the TLS files (read from the --chdir directory, as
 * the workers read them, so after --chdir is applied) and the directories
 * of unix socket addresses.
 */
export function checkServedFiles(settings: Settings): string[] {
  return [...checkTlsSettings(settings), ...checkUnixSocketDirs(settings.bind)]
}

/**
 * Every check a HUP's settings go through before their reload may start:
 * --chdir, -u/--user, -g/--group, --initgroups, then what the workers open.
 * `cwd` is where a relative --chdir starts: the working directory corral was
 * started in (the master is in the --chdir directory by the time a HUP comes).
 */
export function checkReloadedSettings(settings: Settings, cwd: string): string[] {
  return [...checkProcessSettings(settings, cwd), ...checkServedFiles(settings)]
}

/** `unix:PATH` addresses whose directory is missing: named as missing, where binding would say EACCES or ENOENT. */
function checkUnixSocketDirs(binds: readonly string[]): string[] {
  return binds.flatMap((bind) => {
    if (!bind.startsWith('unix:')) return []
    const dir = dirname(resolve(bind.slice('unix:'.length)))
    try {
      return statSync(dir).isDirectory() ? [] : [`-b/--bind ${bind}: ${dir} is not a directory`]
    } catch {
      return [`-b/--bind ${bind}: the directory ${dir} does not exist`]
    }
  })
}
