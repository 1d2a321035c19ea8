// npm run compat [-- ID…]: the framework grid. Packs corral once, runs the
// battery against every framework module under compat/frameworks/ (or the
// ones named), one after another (two cores: the cases measure the
// framework, not the machine's contention), and writes spec/compat.md.
// Exit 1 when a failure is unexplained (compat/harness/explained.ts).
import { readdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { makeCerts } from '../../test/helpers/tls-certs.ts'
import type { Framework } from '../framework.ts'
import { runFramework, type Column } from './grid.ts'
import { explanation, renderGrid, totals } from './report.ts'
import { packCorral, ROOT } from './scratch.ts'

export async function loadFrameworks(only: readonly string[] = []): Promise<Framework[]> {
  const dir = join(ROOT, 'compat/frameworks')
  const frameworks: Framework[] = []
  for (const file of readdirSync(dir)
    .filter((f) => f.endsWith('.ts'))
    .sort()) {
    const framework = ((await import(join(dir, file))) as { default: Framework }).default
    if (only.length === 0 || only.includes(framework.id)) frameworks.push(framework)
  }
  const unknown = only.filter((id) => !frameworks.some((f) => f.id === id))
  if (unknown.length > 0) throw new Error(`no framework ${unknown.join(', ')} under compat/frameworks/`)
  return frameworks
}

async function main(): Promise<number> {
  const only = process.argv.slice(2)
  const frameworks = await loadFrameworks(only)
  const started = Date.now()
  const say = (line: string) => process.stdout.write(`${line}\n`)
  say('packing corral…')
  const tarball = packCorral()
  const certs = makeCerts()
  const columns: Column[] = []
  try {
    for (const framework of frameworks) {
      say(`${framework.title} (${framework.id})`)
      const column = await runFramework(framework, tarball, certs, say)
      say(`  ${Math.round(column.seconds)} s`)
      columns.push(column)
    }
  } finally {
    certs.remove()
  }
  const t = totals(columns)
  writeFileSync(join(ROOT, 'spec/compat.md'), renderGrid(columns, new Date()))
  say(
    `${t.passed} passed, ${t.failed} failed, ${t.notApplicable} not applicable, in ${Math.round((Date.now() - started) / 1000)} s: spec/compat.md`,
  )
  const unexplained = columns.flatMap((c) =>
    [...c.outcomes]
      .filter(([id, o]) => o.result === 'fail' && !explanation(c.framework.id, id))
      .map(([id]) => `${c.framework.id}/${id}`),
  )
  if (unexplained.length > 0) say(`unexplained failures: ${unexplained.join(', ')}`)
  return unexplained.length > 0 ? 1 : 0
}

process.exitCode = await main()
