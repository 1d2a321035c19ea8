// The framework grid's fast subset (npm run compat runs all of it, and
// writes spec/compat.md): the whole battery against Express, Fastify, Hono
// and an app that calls listen() itself, each installed from npm into its
// scratch app under .cache/compat/ and served by corral from the packed
// tarball. Every case passes, does not apply, or fails as
// compat/harness/explained.ts explains.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { loadFrameworks } from '../compat/harness/frameworks.ts'
import { runFramework } from '../compat/harness/grid.ts'
import { explanation } from '../compat/harness/report.ts'
import { QUIET_ENV } from '../compat/harness/scratch.ts'
import { packCorral } from './helpers/pack.ts'
import { makeCerts, type Certs } from './helpers/tls-certs.ts'

const FAST = ['express5', 'fastify5', 'hono', 'node-listen']

let packed: string
let tarball: string
let certs: Certs

beforeAll(async () => {
  packed = mkdtempSync(join(tmpdir(), 'corral-compat-pack-'))
  tarball = await packCorral(packed, QUIET_ENV)
  certs = makeCerts()
}, 300_000)
afterAll(() => {
  certs?.remove()
  rmSync(packed, { recursive: true, force: true })
})

it.each(FAST)('%s: every case passes, does not apply, or fails as explained', { timeout: 900_000 }, async (id) => {
  const [framework] = await loadFrameworks([id])
  const column = await runFramework(framework!, tarball, certs, () => {})
  const unexplained = [...column.outcomes]
    .filter(([caseId, o]) => o.result === 'fail' && !explanation(id, caseId))
    .map(([caseId, o]) => `${caseId}: ${'why' in o ? o.why : ''}`)
  expect(unexplained).toEqual([])
  expect([...column.outcomes.values()].filter((o) => o.result === 'pass').length).toBeGreaterThan(0)
})
