// The meta-frameworks' build script (compat/frameworks/meta/build-script.ts):
// a production build runs once and is reused while nothing it depends on
// changes, and a build that fails or writes no entry says so in one line.
// The "framework" is a small CLI that counts its runs and writes the entry.
import { spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, test } from 'vitest'
import { buildWith, type BuildInputs, type BuildPlan } from '../compat/frameworks/meta/build-script.ts'

let dir: string
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'corral-compat-build-'))
  // Appends a line per run; writes the entry unless told not to; fails when told.
  writeFileSync(
    join(dir, 'fake-cli.mjs'),
    `import { appendFileSync, mkdirSync, writeFileSync } from 'node:fs'
appendFileSync('runs.txt', process.argv.slice(2).join(' ') + '\\n')
if (process.env.FAKE_FAIL) process.exit(3)
if (!process.env.FAKE_NO_ENTRY) {
  mkdirSync('out', { recursive: true })
  writeFileSync('out/server.js', 'built')
}
`,
  )
})
afterEach(() => rmSync(dir, { recursive: true, force: true }))

const plan: BuildPlan = { id: 'fake', steps: [['fake-cli.mjs', 'build']], entry: 'out/server.js', env: {} }
const inputs: BuildInputs = { dependencies: { fake: '1.0.0' }, files: { 'page.js': 'hello' } }

function runBuild(p: BuildPlan = plan, i: BuildInputs = inputs, env: Record<string, string> = {}) {
  const { files, build } = buildWith(p, i)
  for (const [path, content] of Object.entries(files)) writeFileSync(join(dir, path), content)
  const [cmd, ...args] = build
  const run = spawnSync(cmd!, args, { cwd: dir, encoding: 'utf8', env: { ...process.env, ...env } })
  return { status: run.status, out: `${run.stdout}${run.stderr}`.trim() }
}
const runs = () =>
  existsSync(join(dir, 'runs.txt')) ? readFileSync(join(dir, 'runs.txt'), 'utf8').split('\n').filter(Boolean).length : 0

describe('compat build script', () => {
  test('builds once, then reuses the build while nothing changed', () => {
    const first = runBuild()
    expect(first.status).toBe(0)
    expect(first.out).toMatch(/^compat-build: fake built in [\d.]+ s$/m)
    const second = runBuild()
    expect(second.status).toBe(0)
    expect(second.out).toMatch(/^compat-build: fake reused \(built in [\d.]+ s\)$/m)
    expect(runs()).toBe(1)
  })

  test('rebuilds when a source file, a dependency or the installed lockfile changed, or the entry is gone', () => {
    expect(runBuild().status).toBe(0)
    const editedPage = { ...inputs, files: { 'page.js': 'hello again' } }
    expect(runBuild(plan, editedPage).out).toMatch(/built in/)
    const newerDependency = { ...editedPage, dependencies: { fake: '1.0.1' } }
    expect(runBuild(plan, newerDependency).out).toMatch(/built in/)
    writeFileSync(join(dir, 'package-lock.json'), '{"lockfileVersion":3}')
    expect(runBuild(plan, newerDependency).out).toMatch(/built in/)
    rmSync(join(dir, 'out/server.js'))
    expect(runBuild(plan, newerDependency).out).toMatch(/built in/)
    expect(runBuild(plan, newerDependency).out).toMatch(/reused/)
    expect(runs()).toBe(5)
  })

  test('a failing step is one line naming it, and the next run builds again', () => {
    const failed = runBuild(plan, inputs, { FAKE_FAIL: '1' })
    expect(failed.status).toBe(1)
    expect(failed.out).toMatch(/^compat-build: fake: fake-cli\.mjs build failed \(exit 3\)$/m)
    expect(runBuild().out).toMatch(/built in/)
    expect(runs()).toBe(2)
  })

  test('a build that writes no entry fails, naming the entry it expected', () => {
    const missing = runBuild(plan, inputs, { FAKE_NO_ENTRY: '1' })
    expect(missing.status).toBe(1)
    expect(missing.out).toMatch(/^compat-build: fake: the build did not write out\/server\.js$/m)
  })
})
