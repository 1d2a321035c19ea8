// The framework modules under compat/frameworks/, each default-exporting one
// Framework (compat/framework.ts), in file name order.
import { readdirSync } from 'node:fs'
import { join } from 'node:path'
import type { Framework } from '../framework.ts'
import { ROOT } from './scratch.ts'

/** All of them, or the ones whose id is in `only` (an id that names none is an error). */
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
