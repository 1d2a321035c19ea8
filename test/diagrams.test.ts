// The diagrams in spec/ are generated from machines/ (scripts/diagrams.ts);
// this fails when the committed ones no longer match the machines.
import { existsSync, readFileSync } from 'node:fs'
import { describe, expect, test } from 'vitest'
import {
  eventLabel,
  generate,
  LIFECYCLE,
  MACHINES,
  ROOT,
  stateNodes,
  toMermaid,
  transitions,
} from '../scripts/diagrams.ts'

describe('spec diagrams', () => {
  // Also what shows the drawing deterministic: the files were written by another process.
  test('are up to date', () => {
    const stale = [...generate(readFileSync(LIFECYCLE, 'utf8'))]
      .filter(([path, text]) => !existsSync(path) || readFileSync(path, 'utf8') !== text)
      .map(([path]) => path.slice(ROOT.length + 1))
    if (stale.length > 0) throw new Error(`spec diagrams are stale: run npm run diagrams (${stale.join(', ')})`)
  })

  test.each(MACHINES)('draw every state and label every transition of the $name machine', ({ machine }) => {
    const text = toMermaid(machine)
    for (const node of stateNodes(machine).slice(1)) expect(text).toMatch(new RegExp(`\\b${node.key}\\b`))
    for (const t of transitions(machine)) {
      // `always` transitions and guards are what machine.toJSON() would lose.
      const label = `${eventLabel(t.event)}${t.guard ? ` [${t.guard}]` : ''}`
      expect(text, t.key).toContain(label)
    }
  })
})
