// Draws the statecharts in machines/ as Mermaid `stateDiagram-v2` text, from
// the state nodes themselves: `machine.toJSON()` leaves out `always`
// transitions and function guards (xstate 5.33), so it cannot be the source.
//
//   npm run diagrams      (node scripts/diagrams.ts)
//
// writes spec/diagrams/master.mmd and spec/diagrams/worker.mmd, and replaces
// the blocks between `<!-- diagram:NAME:start -->` and `<!-- diagram:NAME:end -->`
// (and `<!-- transitions:NAME:start/end -->`) in spec/lifecycle.md.
// test/diagrams.test.ts regenerates everything in memory and fails when the
// committed files differ. The walker below is also what the machine tests use
// to list every state node and transition they must cover.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { AnyStateMachine, AnyStateNode } from 'xstate'
import { actionName, eventLabel, guardName, stateNodes, transitions, type TransitionInfo } from './machine-walk.ts'
import { masterMachine } from '../machines/master.ts'
import { workerMachine } from '../machines/worker.ts'
import { dirtyPoolMachine } from '../machines/dirty-pool.ts'

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..')

export const MACHINES: ReadonlyArray<{ readonly name: string; readonly machine: AnyStateMachine }> = [
  { name: 'master', machine: masterMachine },
  { name: 'worker', machine: workerMachine },
  { name: 'dirty-pool', machine: dirtyPoolMachine },
]

export { eventLabel, guardName, stateNodes, transitions, type TransitionInfo }

function entryActions(node: AnyStateNode): string[] {
  return (node.entry as unknown[]).map(actionName)
}

// ---------------------------------------------------------------------------
// Mermaid

/** Mermaid ids: the state's key where that is unique in the machine, else its path joined by `_`. */
function mermaidIds(machine: AnyStateMachine): Map<AnyStateNode, string> {
  const nodes = stateNodes(machine).slice(1)
  const count = new Map<string, number>()
  for (const n of nodes) count.set(n.key, (count.get(n.key) ?? 0) + 1)
  return new Map(nodes.map((n) => [n, count.get(n.key) === 1 ? n.key : n.path.join('_')]))
}

function lca(a: AnyStateNode, b: AnyStateNode): AnyStateNode {
  const ancestors = new Set<AnyStateNode>()
  for (let n: AnyStateNode | undefined = a; n; n = n.parent) ancestors.add(n)
  for (let n: AnyStateNode | undefined = b; n; n = n.parent) if (ancestors.has(n)) return n
  throw new Error('states of different machines')
}

const byText = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0)

/**
 * The machine as a Mermaid state diagram. Every transition with a target is
 * an arrow, drawn inside the innermost composite state holding both ends;
 * arrows between the same two states are merged, one label line each,
 * `EVENT [guard] / actions`. What happens in place (entry actions, and
 * transitions without a target) is a note on the state. Lines inside a block
 * are sorted, so the text changes only when the machine does.
 */
export function toMermaid(machine: AnyStateMachine): string {
  const ids = mermaidIds(machine)
  const id = (n: AnyStateNode) => ids.get(n) ?? '[*]'
  const all = transitions(machine)
  const label = (t: TransitionInfo) =>
    `${eventLabel(t.event)}${t.guard ? ` [${t.guard}]` : ''}${t.actions.length ? ` / ${t.actions.join(', ')}` : ''}`

  const block = (node: AnyStateNode, depth: number): string[] => {
    const pad = '  '.repeat(depth)
    const out: string[] = []
    const children = Object.values(node.states)
    for (const child of children) {
      if (Object.keys(child.states).length > 0)
        out.push(`${pad}state ${id(child)} {`, ...block(child, depth + 1), `${pad}}`)
      else out.push(`${pad}${id(child)}`)
      const entry = entryActions(child)
      const note = [
        ...(entry.length ? [`entry / ${entry.join(', ')}`] : []),
        ...all.filter((t) => t.source === child && t.targets.length === 0).map(label),
      ]
      if (note.length)
        out.push(`${pad}note right of ${id(child)}`, ...note.map((l) => `${pad}  ${l}`), `${pad}end note`)
    }
    const arrows = new Map<string, string[]>()
    const initial = node.initial?.target?.[0] as AnyStateNode | undefined
    if (initial) arrows.set(`[*] --> ${id(initial)}`, [])
    for (const child of children) if (child.type === 'final') arrows.set(`${id(child)} --> [*]`, [])
    for (const t of all) {
      for (const target of t.targets) {
        const home = target === t.source ? t.source.parent : lca(t.source, target)
        if (home !== node) continue
        const arrow = `${id(t.source)} --> ${id(target)}`
        arrows.set(arrow, [...(arrows.get(arrow) ?? []), label(t)])
      }
    }
    const lines = [...arrows].map(([arrow, labels]) => (labels.length ? `${arrow} : ${labels.join('<br/>')}` : arrow))
    lines.sort(byText)
    return [...out, ...lines.map((l) => pad + l)]
  }
  return `${['stateDiagram-v2', ...block(machine.root, 1)].join('\n')}\n`
}

/** A Markdown table of every transition, for the reader who wants it exact. */
export function toTable(machine: AnyStateMachine): string {
  const rows = transitions(machine).map((t) => {
    const from = t.source.path.join('.') || '(root)'
    const to = t.targets.length ? t.targets.map((n) => n.path.join('.')).join(', ') : '(stays)'
    return `| \`${from}\` | ${eventLabel(t.event)} | ${t.guard ? `\`${t.guard}\`` : ''} | ${to === '(stays)' ? to : `\`${to}\``} | ${t.actions.map((a) => `\`${a}\``).join(', ')} |`
  })
  return `${['| from | event | guard | to | actions |', '|---|---|---|---|---|', ...rows].join('\n')}\n`
}

// ---------------------------------------------------------------------------
// Files

export const DIAGRAM_DIR = join(ROOT, 'spec', 'diagrams')
export const LIFECYCLE = join(ROOT, 'spec', 'lifecycle.md')

function replaceBetween(text: string, marker: string, content: string): string {
  const start = `<!-- ${marker}:start -->`
  const end = `<!-- ${marker}:end -->`
  const i = text.indexOf(start)
  const j = text.indexOf(end)
  if (i < 0 || j < i) throw new Error(`spec/lifecycle.md lacks the markers ${start} … ${end}`)
  return `${text.slice(0, i + start.length)}\n${content}${text.slice(j)}`
}

/** What every generated file should contain, by absolute path. */
export function generate(lifecycleText: string): Map<string, string> {
  const files = new Map<string, string>()
  let doc = lifecycleText
  for (const { name, machine } of MACHINES) {
    const mermaid = toMermaid(machine)
    files.set(join(DIAGRAM_DIR, `${name}.mmd`), mermaid)
    doc = replaceBetween(doc, `diagram:${name}`, `\`\`\`mermaid\n${mermaid}\`\`\`\n`)
    doc = replaceBetween(doc, `transitions:${name}`, toTable(machine))
  }
  files.set(LIFECYCLE, doc)
  return files
}

if (import.meta.main) {
  mkdirSync(DIAGRAM_DIR, { recursive: true })
  for (const [path, text] of generate(readFileSync(LIFECYCLE, 'utf8'))) {
    writeFileSync(path, text)
    console.log(`wrote ${path.slice(ROOT.length + 1)}`)
  }
}
