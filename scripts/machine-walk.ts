// Walks a statechart's state nodes: every node, every transition with its
// guard and actions. The one source the spec's diagrams (scripts/diagrams.ts),
// the machine tests and the inspector's charts (src/inspector-ui/) are drawn
// from, so none of them can drift from the machines. Imports nothing of Node:
// it is bundled into the inspector page too.
import type { AnyStateMachine, AnyStateNode } from 'xstate'

/** Every state node of a machine, the root first, children in document order. */
export function stateNodes(machine: AnyStateMachine | AnyStateNode): AnyStateNode[] {
  const root: AnyStateNode = 'root' in machine ? machine.root : machine
  const out: AnyStateNode[] = []
  const walk = (node: AnyStateNode) => {
    out.push(node)
    for (const child of Object.values(node.states)) walk(child)
  }
  walk(root)
  return out
}

export interface TransitionInfo {
  /** Unique within the machine: `source: EVENT [guard]`, e.g. `master.active.running.steady: USR2 [noChildMaster]`. */
  readonly key: string
  readonly source: AnyStateNode
  /** The event descriptor, `always` for eventless transitions. */
  readonly event: string
  readonly guard: string | undefined
  readonly targets: readonly AnyStateNode[]
  readonly actions: readonly string[]
  /** XState's TransitionDefinition: the object `@xstate.microstep` inspection events carry. */
  readonly definition: object
}

interface RawTransition {
  readonly eventType: string
  readonly guard?: unknown
  readonly target?: readonly AnyStateNode[] | undefined
  readonly actions: readonly unknown[]
}

/** A readable name for a guard: its name, or and/or/not spelled out. */
export function guardName(guard: unknown): string | undefined {
  if (guard === undefined) return undefined
  if (typeof guard === 'string') return guard
  if (typeof guard === 'function') {
    const g = guard as { type?: string; guards?: unknown[]; name: string }
    if (g.type === 'xstate.and' || g.type === 'xstate.or')
      return `${g.type.slice(7)}(${(g.guards ?? []).map(guardName).join(', ')})`
    if (g.type === 'xstate.not') return `not(${(g.guards ?? []).map(guardName).join(', ')})`
    return g.name || 'inline'
  }
  if (typeof guard === 'object' && guard !== null && 'type' in guard) return String((guard as { type: unknown }).type)
  return 'inline'
}

export function actionName(action: unknown): string {
  if (typeof action === 'string') return action
  if (typeof action === 'function') return (action as { type?: string; name: string }).type ?? (action.name || 'inline')
  if (typeof action === 'object' && action !== null && 'type' in action)
    return String((action as { type: unknown }).type)
  return 'inline'
}

/** How an event descriptor is shown: delayed transitions as `after <delay>`. */
export function eventLabel(event: string): string {
  const after = /^xstate\.after\.([^.]+)\./.exec(event)
  return after ? `after ${after[1]}` : event
}

/**
 * Every transition of every state node, in document order: each `on` entry
 * with each of its guarded alternatives, then `always` (and `after`, which
 * XState files under `on` as `xstate.after.*` events).
 */
export function transitions(machine: AnyStateMachine): TransitionInfo[] {
  const out: TransitionInfo[] = []
  for (const node of stateNodes(machine)) {
    const all: RawTransition[] = [
      ...[...(node.transitions as Map<string, RawTransition[]>).values()].flat(),
      ...((node.always ?? []) as RawTransition[]),
    ]
    for (const t of all) {
      const event = t.eventType === '' ? 'always' : t.eventType
      const guard = guardName(t.guard)
      out.push({
        key: `${node.id}: ${eventLabel(event)}${guard ? ` [${guard}]` : ''}`,
        source: node,
        event,
        guard,
        targets: t.target ?? [],
        actions: t.actions.map(actionName),
        definition: t,
      })
    }
  }
  return out
}
