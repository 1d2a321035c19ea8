// The scratch apps the grid runs: one directory per framework under
// .cache/compat/, its package.json written from the framework module, its
// packages installed from the npm registry only when that package set changed
// since the last run (a stamp file holds the set), its files written and its
// production build run every time (they are the framework module's, and
// cheap to redo), and corral installed from the tarball `npm pack` made.
import { spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Framework } from '../framework.ts'

export const ROOT = fileURLToPath(new URL('../..', import.meta.url))
const CACHE = join(ROOT, '.cache/compat')

/** No framework's telemetry leaves this machine; npm says nothing it need not. */
export const QUIET_ENV: Readonly<Record<string, string>> = {
  NEXT_TELEMETRY_DISABLED: '1',
  NUXT_TELEMETRY_DISABLED: '1',
  ASTRO_TELEMETRY_DISABLED: '1',
  NITRO_TELEMETRY_DISABLED: '1',
  DO_NOT_TRACK: '1',
  npm_config_update_notifier: 'false',
  npm_config_fund: 'false',
  npm_config_audit: 'false',
}

function run(cwd: string, argv: readonly string[], what: string, env: Record<string, string> = {}): void {
  const [cmd, ...args] = argv
  const r = spawnSync(cmd!, args, {
    cwd,
    encoding: 'utf8',
    timeout: 600_000,
    env: { ...process.env, ...QUIET_ENV, ...env },
  })
  if (r.status !== 0) {
    const output = `${r.stdout ?? ''}${r.stderr ?? ''}`.trim().split('\n').slice(-30).join('\n')
    throw new Error(`${what} failed (${r.error?.message ?? `exit ${r.status}`}):\n${output}`)
  }
}

export interface ScratchApp {
  readonly dir: string
  /** The installed version of the framework's `versionOf` package. */
  readonly version: string
  /** Whether this run installed packages (false: the set was unchanged, the install was reused). */
  readonly installed: boolean
}

/** Makes (or reuses) the framework's scratch app, builds it and installs corral from `tarball`. */
export function prepareApp(framework: Framework, tarball: string): ScratchApp {
  const dir = join(CACHE, framework.id)
  const manifest = {
    name: `compat-${framework.id}`,
    private: true,
    type: 'module',
    dependencies: { ...framework.dependencies },
    devDependencies: { ...framework.devDependencies },
  }
  const packageSet = createHash('sha256').update(JSON.stringify(manifest)).digest('hex')
  const stamp = join(dir, '.compat-packages')
  const reuse = existsSync(stamp) && readFileSync(stamp, 'utf8') === packageSet
  if (!reuse) {
    rmSync(dir, { recursive: true, force: true })
    mkdirSync(dir, { recursive: true })
    writeFileSync(join(dir, 'package.json'), `${JSON.stringify(manifest, null, 2)}\n`)
    run(dir, ['npm', 'install', '--no-audit', '--no-fund', '--loglevel=error'], `npm install in ${dir}`)
    writeFileSync(stamp, packageSet)
  }
  for (const [path, content] of Object.entries(framework.files)) {
    mkdirSync(dirname(join(dir, path)), { recursive: true })
    writeFileSync(join(dir, path), content)
  }
  if (framework.build) run(dir, framework.build, `${framework.id}: ${framework.build.join(' ')}`, { ...framework.env })
  // The tarball changes with every corral change: installed each run, into node_modules
  // only (--no-save), so the package set, and the stamp, stay the framework's.
  run(
    dir,
    ['npm', 'install', '--no-save', '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error', tarball],
    `installing ${tarball}`,
  )
  const versionFile = join(dir, 'node_modules', framework.versionOf, 'package.json')
  const version = (JSON.parse(readFileSync(versionFile, 'utf8')) as { version: string }).version
  return { dir, version, installed: !reuse }
}
