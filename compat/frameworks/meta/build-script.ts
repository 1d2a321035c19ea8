import { createHash } from 'node:crypto'

// A meta-framework's production build is the slow part of the grid (tens of
// seconds to minutes each on a busy 2-core machine), so each app builds
// through a small script that skips the build when nothing it depends on has
// changed: the framework's dependencies and source files (hashed here, when
// the Framework module is loaded), the installed package-lock.json, and the
// build's entry still being there. It prints how long the build took, or that
// it was reused, on one line the harness can keep.
export const buildScriptPath = 'compat-build.mjs'

export interface BuildPlan {
  readonly id: string
  /** Each step is a package's CLI (a path under node_modules) and its arguments, run with the harness's Node. */
  readonly steps: readonly (readonly string[])[]
  /** Directories copied after the build (from, to), as the framework's deployment docs ask. */
  readonly copies?: readonly (readonly [string, string])[]
  /** The file the build must produce: the app's production entry. */
  readonly entry: string
  /** Environment for the build (telemetry off). */
  readonly env: Readonly<Record<string, string>>
}

export interface BuildInputs {
  readonly dependencies: Readonly<Record<string, string>>
  readonly devDependencies?: Readonly<Record<string, string>>
  readonly files: Readonly<Record<string, string>>
}

/** The build script's file (to add to the Framework's files) and the `build` argv that runs it. */
export function buildWith(plan: BuildPlan, inputs: BuildInputs): { files: Record<string, string>; build: string[] } {
  const stamp = createHash('sha256').update(JSON.stringify({ plan, inputs })).digest('hex')
  const source = `// Written by corral's compat grid (compat/frameworks/meta/build-script.ts).
import { spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { cpSync, existsSync, readFileSync, writeFileSync } from 'node:fs'

const plan = ${JSON.stringify(plan)}
const stampFile = '.compat-build.json'
const lock = existsSync('package-lock.json') ? readFileSync('package-lock.json') : ''
const stamp = createHash('sha256').update(${JSON.stringify(stamp)}).update(lock).digest('hex')
const previous = existsSync(stampFile) ? JSON.parse(readFileSync(stampFile, 'utf8')) : undefined
if (previous?.stamp === stamp && existsSync(plan.entry)) {
  console.log('compat-build: ' + plan.id + ' reused (built in ' + previous.seconds + ' s)')
  process.exit(0)
}
const started = performance.now()
for (const [cli, ...args] of plan.steps) {
  const run = spawnSync(process.execPath, [cli, ...args], { stdio: 'inherit', env: { ...process.env, ...plan.env } })
  if (run.status !== 0) {
    console.error('compat-build: ' + plan.id + ': ' + [cli, ...args].join(' ') + ' failed (' + (run.error?.message ?? 'exit ' + (run.status ?? run.signal)) + ')')
    process.exit(1)
  }
}
for (const [from, to] of plan.copies ?? []) if (existsSync(from)) cpSync(from, to, { recursive: true })
if (!existsSync(plan.entry)) {
  console.error('compat-build: ' + plan.id + ': the build did not write ' + plan.entry)
  process.exit(1)
}
const seconds = Math.round((performance.now() - started) / 100) / 10
writeFileSync(stampFile, JSON.stringify({ stamp, seconds }) + '\\n')
console.log('compat-build: ' + plan.id + ' built in ' + seconds + ' s')
`
  return { files: { [buildScriptPath]: source }, build: [process.execPath, buildScriptPath] }
}
