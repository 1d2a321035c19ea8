// npm run compat [-- ID…]: the framework grid. Packs corral once, runs the
// battery against every framework module under compat/frameworks/ (or the
// ones named), one after another (two cores: the cases measure the
// framework, not the machine's contention), and writes spec/compat.md.
// Exit 1 when a failure is unexplained (compat/harness/explained.ts).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { packCorral } from '../../test/helpers/pack.ts'
import { makeCerts } from '../../test/helpers/tls-certs.ts'
import { loadFrameworks } from './frameworks.ts'
import { runFramework, type Column } from './grid.ts'
import { explanation, renderGrid, totals } from './report.ts'
import { QUIET_ENV, ROOT } from './scratch.ts'

async function main(): Promise<number> {
  const only = process.argv.slice(2)
  const frameworks = await loadFrameworks(only)
  const started = Date.now()
  const say = (line: string) => process.stdout.write(`${line}\n`)
  say('packing corral…')
  const packed = mkdtempSync(join(tmpdir(), 'corral-compat-pack-'))
  const tarball = await packCorral(packed, QUIET_ENV)
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
    rmSync(packed, { recursive: true, force: true })
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
