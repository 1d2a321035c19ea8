// npm run compat [-- ID…]: the framework grid. Packs corral once, runs the
// battery against every framework module under compat/frameworks/ (or the
// ones named), one after another (two cores: the cases measure the
// framework, not the machine's contention), keeps each column's results in
// .cache/compat/grid.json (a run of some frameworks replaces their columns
// only) and writes spec/compat.md from them. `npm run compat -- --render`
// rewrites spec/compat.md from the kept results alone (after editing an
// explanation). Exit 1 when a failure is unexplained (compat/harness/explained.ts).
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { packCorral } from '../../test/helpers/pack.ts'
import { makeCerts } from '../../test/helpers/tls-certs.ts'
import { loadFrameworks } from './frameworks.ts'
import { runFramework, type Column, type Outcome } from './grid.ts'
import { explanation, renderGrid, totals } from './report.ts'
import { QUIET_ENV, ROOT } from './scratch.ts'

const KEPT = join(ROOT, '.cache/compat/grid.json')

/** A column as kept between runs: the framework by id (its module gives the rest). */
interface KeptColumn {
  readonly id: string
  readonly version: string
  readonly seconds: number
  /** When its run ended (ISO). */
  readonly ranAt: string
  readonly outcomes: readonly (readonly [string, Outcome])[]
}

function readKept(): KeptColumn[] {
  return existsSync(KEPT) ? (JSON.parse(readFileSync(KEPT, 'utf8')) as KeptColumn[]) : []
}

async function main(): Promise<number> {
  const args = process.argv.slice(2)
  const say = (line: string) => process.stdout.write(`${line}\n`)
  const render = args.includes('--render')
  const frameworks = await loadFrameworks(args.filter((a) => a !== '--render'))
  const kept = new Map(readKept().map((c) => [c.id, c]))
  if (!render) {
    const started = Date.now()
    say('packing corral…')
    const packed = mkdtempSync(join(tmpdir(), 'corral-compat-pack-'))
    const tarball = await packCorral(packed, QUIET_ENV)
    const certs = makeCerts()
    try {
      for (const framework of frameworks) {
        say(`${framework.title} (${framework.id})`)
        const column = await runFramework(framework, tarball, certs, say)
        say(`  ${Math.round(column.seconds)} s`)
        kept.set(framework.id, {
          id: framework.id,
          version: column.version,
          seconds: column.seconds,
          ranAt: new Date().toISOString(),
          outcomes: [...column.outcomes],
        })
        mkdirSync(join(ROOT, '.cache/compat'), { recursive: true })
        writeFileSync(KEPT, JSON.stringify([...kept.values()], null, 1))
      }
    } finally {
      certs.remove()
      rmSync(packed, { recursive: true, force: true })
    }
    say(`ran in ${Math.round((Date.now() - started) / 1000)} s`)
  }
  // Every framework that still has a module, in file order, from its last run.
  const all = await loadFrameworks()
  const columns: Column[] = all.flatMap((framework) => {
    const c = kept.get(framework.id)
    if (c === undefined) return []
    return [{ framework, version: c.version, seconds: c.seconds, outcomes: new Map(c.outcomes) as Column['outcomes'] }]
  })
  const missing = all.filter((f) => !kept.has(f.id)).map((f) => f.id)
  if (missing.length > 0) say(`not in the grid yet (never run): ${missing.join(', ')}`)
  const ranAt = [...kept.values()]
    .filter((c) => all.some((f) => f.id === c.id))
    .map((c) => c.ranAt)
    .sort()
  const t = totals(columns)
  writeFileSync(join(ROOT, 'spec/compat.md'), renderGrid(columns, new Date(ranAt.at(-1) ?? Date.now())))
  say(`${t.passed} passed, ${t.failed} failed, ${t.notApplicable} not applicable: spec/compat.md`)
  const unexplained = columns.flatMap((c) =>
    [...c.outcomes]
      .filter(([id, o]) => o.result === 'fail' && !explanation(c.framework.id, id))
      .map(([id]) => `${c.framework.id}/${id}`),
  )
  if (unexplained.length > 0) say(`unexplained failures: ${unexplained.join(', ')}`)
  return unexplained.length > 0 ? 1 : 0
}

process.exitCode = await main()
