// corral packed as `npm publish` would pack it (prepack builds dist/ first).
// test/package.test.ts and the framework grid (compat/harness/, also run by
// test/compat-fast.test.ts) both pack, maybe at once in two vitest workers:
// the build writes dist/ in place, so one pack at a time, under a lock
// directory that names its holder (a holder that died leaves a stale lock,
// taken over).
import { execFileSync } from 'node:child_process'
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { ROOT, isAlive, waitFor } from './corral.ts'

const LOCK = join(ROOT, '.cache/pack.lock')

function tryLock(): boolean {
  mkdirSync(join(ROOT, '.cache'), { recursive: true })
  try {
    mkdirSync(LOCK)
  } catch {
    let holder = 0
    try {
      holder = Number(readFileSync(join(LOCK, 'pid'), 'utf8'))
    } catch {
      // Made, its pid not written yet: the holder is alive.
      return false
    }
    if (isAlive(holder)) return false
    rmSync(LOCK, { recursive: true, force: true })
    return tryLock()
  }
  writeFileSync(join(LOCK, 'pid'), String(process.pid))
  return true
}

/** Packs corral into `destination`; returns the tarball's path. */
export async function packCorral(destination: string, env: NodeJS.ProcessEnv = {}): Promise<string> {
  await waitFor(tryLock, { timeoutMs: 300_000, everyMs: 200, what: 'the pack lock (.cache/pack.lock)' })
  try {
    const out = execFileSync('npm', ['pack', '--pack-destination', destination, '--silent'], {
      cwd: ROOT,
      encoding: 'utf8',
      env: { ...process.env, ...env },
    })
    return join(destination, out.trim().split('\n').at(-1)!)
  } finally {
    rmSync(LOCK, { recursive: true, force: true })
  }
}
