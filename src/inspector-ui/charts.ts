// The statecharts as SVG, drawn from the machines' own state nodes (the
// walker the spec's diagrams use, scripts/machine-walk.ts) and laid out by
// elkjs. A transition with a target is an arrow labelled `EVENT [guard] /
// actions`; one that stays (and entry actions) is a line inside its state.
import elkModule, {
  type ElkEdgeSection,
  type ElkExtendedEdge,
  type ElkLabel,
  type ElkNode,
} from 'elkjs/lib/elk.bundled.js'
import type { AnyStateMachine, AnyStateNode } from 'xstate'
import { actionName, eventLabel, stateNodes, transitions, type TransitionInfo } from '../../scripts/machine-walk.ts'

// elk.bundled.js is CommonJS whose module.exports is the constructor; the bundler hands it over as the default.
const ELK = elkModule as unknown as new () => { layout(graph: ElkNode): Promise<ElkNode> }

// The labels' size in the SVG's own units (style.css sets 12 px, monospace:
// 0.6 em a character): at zoom 1 they render at that size, readable at
// 1400 × 900 (spec/inspector.md), and the page zooms from there.
const CHAR_W = 7.3
const LINE_H = 16

export interface Layout {
  readonly machine: AnyStateMachine
  readonly graph: ElkNode
  readonly edges: ReadonlyArray<{ readonly info: TransitionInfo; readonly id: string }>
}

const label = (t: TransitionInfo) =>
  `${eventLabel(t.event)}${t.guard ? ` [${t.guard}]` : ''}${t.actions.length ? ` / ${t.actions.join(', ')}` : ''}`

/** The lines inside a state: its entry actions, then each transition that stays (with the transition, to light it). */
function notes(node: AnyStateNode, all: readonly TransitionInfo[]): { text: string; info?: TransitionInfo }[] {
  const entry = (node.entry as unknown[]).map(actionName)
  return [
    ...(entry.length ? [{ text: `entry / ${entry.join(', ')}` }] : []),
    ...all.filter((t) => t.source === node && t.targets.length === 0).map((info) => ({ text: label(info), info })),
  ]
}

const textWidth = (lines: readonly string[]) => Math.max(0, ...lines.map((l) => l.length)) * CHAR_W

/** How a transition is named for lighting it: its source state's id, its event and maybe its guard (`master.active: TTIN`). */
export const transitionKey = (sourceId: string, event: string, guard?: string) =>
  `${sourceId}: ${event}${guard === undefined ? '' : ` [${guard}]`}`

export async function layOut(machine: AnyStateMachine): Promise<Layout> {
  const all = transitions(machine)
  const toElk = (node: AnyStateNode): ElkNode => {
    const lines = notes(node, all).map((n) => n.text)
    const children = Object.values(node.states).map(toElk)
    const header = LINE_H + 8 + lines.length * LINE_H
    return {
      id: node.id,
      labels: [{ text: node.key, width: node.key.length * CHAR_W, height: LINE_H }],
      ...(children.length
        ? {
            children,
            layoutOptions: {
              'elk.padding': `[top=${header + 10},left=12,bottom=12,right=12]`,
              'elk.nodeSize.minimum': `(${textWidth(lines) + 24}, ${header + 30})`,
              'elk.nodeSize.constraints': 'MINIMUM_SIZE',
            },
          }
        : { width: Math.max(textWidth([node.key, ...lines]) + 20, 90), height: header + 8 }),
    }
  }
  const edges: { info: TransitionInfo; id: string }[] = []
  const elkEdges: ElkExtendedEdge[] = []
  all.forEach((info, i) => {
    for (const target of info.targets) {
      const id = `e${i}-${target.id}`
      edges.push({ info, id })
      const text = label(info)
      elkEdges.push({
        id,
        sources: [info.source.id],
        targets: [target.id],
        labels: [{ text, width: text.length * CHAR_W, height: LINE_H }],
      })
    }
  })
  const root = toElk(machine.root)
  const graph = await new ELK().layout({
    ...root,
    edges: elkEdges,
    layoutOptions: {
      'elk.algorithm': 'layered',
      'elk.direction': 'DOWN',
      'elk.hierarchyHandling': 'INCLUDE_CHILDREN',
      'elk.json.shapeCoords': 'ROOT',
      'elk.json.edgeCoords': 'ROOT',
      'elk.layered.spacing.nodeNodeBetweenLayers': '48',
      'elk.spacing.nodeNode': '30',
      'elk.spacing.edgeLabel': '4',
      'elk.edgeLabels.placement': 'CENTER',
      'elk.padding': `[top=${LINE_H + 16 + notes(machine.root, all).length * LINE_H},left=12,bottom=12,right=12]`,
    },
  })
  return { machine, graph, edges }
}

/** The ids of the active state nodes for a state value (`'a'`, `{ a: 'b' }`, …). */
export function activeIds(machine: AnyStateMachine, value: unknown): Set<string> {
  const out = new Set<string>([machine.root.id])
  const walk = (node: AnyStateNode, v: unknown) => {
    if (typeof v === 'string') {
      const child = node.states[v]
      if (child) out.add(child.id)
    } else if (v && typeof v === 'object') {
      for (const [key, sub] of Object.entries(v)) {
        const child = node.states[key]
        if (!child) continue
        out.add(child.id)
        walk(child, sub)
      }
    }
  }
  walk(machine.root, value)
  return out
}

const esc = (s: string) => s.replace(/[&<>"]/g, (c) => `&#${c.charCodeAt(0)};`)

/**
 * The layout as SVG text. `active`: the states to highlight; `taken`: an
 * event type whose transitions from `from` into `active` are highlighted too;
 * `lit`: transitions a tour step is about (`transitionKey`s); `zoom`: the
 * size it is drawn at, 1 being the layout's own units.
 */
export function toSvg(
  layout: Layout,
  active: ReadonlySet<string>,
  taken?: { from: ReadonlySet<string>; event: string },
  lit: ReadonlySet<string> = new Set(),
  zoom = 1,
): string {
  const isLit = (info: TransitionInfo | undefined) =>
    info !== undefined &&
    (lit.has(transitionKey(info.source.id, info.event)) ||
      lit.has(transitionKey(info.source.id, info.event, info.guard)))
  const { graph, machine } = layout
  const all = transitions(machine)
  const byId = new Map(stateNodes(machine).map((n) => [n.id, n]))
  const parts: string[] = []
  const drawNode = (n: ElkNode, depth: number) => {
    const state = byId.get(n.id)
    if (!state) return
    const on = active.has(n.id)
    const x = n.x ?? 0
    const y = n.y ?? 0
    if (depth > 0)
      parts.push(
        `<g class="state${on ? ' active' : ''}${n.children?.length ? ' compound' : ''}" data-state="${esc(n.id)}"><rect x="${x}" y="${y}" width="${n.width}" height="${n.height}" rx="8"/>`,
        `<text class="name" x="${x + 8}" y="${y + LINE_H + 2}">${esc(state.key)}${state.type === 'final' ? ' ◉' : ''}</text>`,
      )
    else parts.push(`<g><text class="name" x="${x + 8}" y="${y + LINE_H + 3}">${esc(machine.id)}</text>`)
    notes(state, all).forEach((line, i) => {
      parts.push(
        `<text class="note${isLit(line.info) ? ' lit' : ''}" x="${x + 10}" y="${y + LINE_H * (i + 2) + 6}">${esc(line.text)}</text>`,
      )
    })
    parts.push('</g>')
    for (const child of n.children ?? []) drawNode(child, depth + 1)
  }
  drawNode(graph, 0)
  for (const edge of (graph.edges ?? []) as ElkExtendedEdge[]) {
    const info = layout.edges.find((e) => e.id === edge.id)?.info
    const hot =
      taken !== undefined &&
      info !== undefined &&
      info.event === taken.event &&
      taken.from.has(info.source.id) &&
      info.targets.every((t) => active.has(t.id))
    const classes = `${hot ? ' taken' : ''}${isLit(info) ? ' lit' : ''}`
    for (const s of (edge.sections ?? []) as ElkEdgeSection[]) {
      const points = [s.startPoint, ...(s.bendPoints ?? []), s.endPoint].map((p) => `${p.x},${p.y}`).join(' ')
      parts.push(`<polyline class="edge${classes}" points="${points}" marker-end="url(#arrow)"/>`)
    }
    for (const l of (edge.labels ?? []) as ElkLabel[])
      parts.push(
        `<text class="edge-label${classes}" x="${l.x ?? 0}" y="${(l.y ?? 0) + LINE_H - 4}">${esc(l.text ?? '')}</text>`,
      )
  }
  const w = graph.width ?? 100
  const h = graph.height ?? 100
  return `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${w} ${h}" width="${w * zoom}" height="${h * zoom}"><defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z"/></marker></defs>${parts.join('')}</svg>`
}
