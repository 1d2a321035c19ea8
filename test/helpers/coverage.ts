// Which state nodes and transitions of a machine a set of runs exercised, and
// how often, read from XState's inspection events (microsteps carry the
// transitions taken); and how often each named guard held and failed, counted
// by a copy of the machine whose guards are wrapped (`coverage.machine`).
// Shared by the master and worker machine tests and the model tests.
import type { AnyStateMachine, AnyStateNode, InspectionEvent, StateValue } from 'xstate'
import { stateNodes, type TransitionInfo, transitions } from '../../scripts/diagrams.ts'

type GuardFn = (args: unknown, params: unknown) => boolean

export class Coverage<M extends AnyStateMachine> {
  /** The machine with counting guards: create actors from it for the guards to be counted. */
  readonly machine: M
  readonly nodes = new Set<string>()
  /** Transition key → how many times it was taken. */
  readonly transitions = new Map<string, number>()
  /** Guard name → how many times it held and failed. */
  readonly guards = new Map<string, { held: number; failed: number }>()
  readonly #keyOf = new Map<object, string>()
  readonly #root: AnyStateNode
  readonly #transitions: readonly TransitionInfo[]
  readonly #nodeIds: readonly string[]

  constructor(machine: M) {
    const implementations = (machine.implementations.guards ?? {}) as Record<string, GuardFn>
    const counting: Record<string, GuardFn> = {}
    for (const [name, guard] of Object.entries(implementations)) {
      const count = { held: 0, failed: 0 }
      this.guards.set(name, count)
      counting[name] = (args, params) => {
        const held = guard(args, params)
        if (held) count.held++
        else count.failed++
        return held
      }
    }
    this.machine = machine.provide({ guards: counting } as never) as M
    // Actors of the original machine count too (their transitions, not their guards).
    for (const m of [machine, this.machine]) for (const t of transitions(m)) this.#keyOf.set(t.definition, t.key)
    this.#transitions = transitions(machine)
    this.#nodeIds = stateNodes(machine).map((n) => n.id)
    this.#root = machine.root
  }

  readonly inspect = (ev: InspectionEvent): void => {
    if (ev.type !== '@xstate.microstep') return
    for (const t of ev._transitions) {
      const key = this.#keyOf.get(t)
      if (key) this.transitions.set(key, (this.transitions.get(key) ?? 0) + 1)
    }
    this.visit((ev.snapshot as unknown as { value: StateValue }).value)
  }

  /** Records the state nodes a state value is in, ancestors included (an actor's initial state, say). */
  visit(value: StateValue): void {
    this.nodes.add(this.#root.id)
    const walk = (node: AnyStateNode, v: StateValue) => {
      for (const [k, sub] of typeof v === 'string' ? [[v, undefined] as const] : Object.entries(v)) {
        const child = node.states[k]
        if (!child) continue
        this.nodes.add(child.id)
        if (sub !== undefined) walk(child, sub as StateValue)
      }
    }
    walk(this.#root, value)
  }

  /**
   * What was never exercised: state nodes, transitions, guards that never
   * held. (A guard that never failed is in the report, not here: the shell
   * may never send what it guards against, as with settingsOwed.) With
   * `concerns`, only those transitions and their guards, not the state nodes.
   */
  missing(concerns?: (t: TransitionInfo) => boolean): string[] {
    const chosen = concerns ? this.#transitions.filter(concerns) : this.#transitions
    const guardNames = concerns ? new Set(chosen.map((t) => t.guard)) : undefined
    const guards = [...this.guards]
      .filter(([name, { held }]) => held === 0 && (!guardNames || guardNames.has(name)))
      .map(([name]) => `guard ${name} never held`)
    return [
      ...(concerns ? [] : this.#nodeIds.filter((id) => !this.nodes.has(id)).map((id) => `state ${id} never visited`)),
      ...chosen.filter((t) => !this.transitions.has(t.key)).map((t) => `transition ${t.key} never taken`),
      ...guards,
    ]
  }

  /** Every transition and guard with its count, the rarest first. */
  report(title: string): string {
    const taken = this.#transitions.map(({ key }) => [key, this.transitions.get(key) ?? 0] as const)
    taken.sort((a, b) => a[1] - b[1])
    const guards = [...this.guards].sort((a, b) => Math.min(a[1].held, a[1].failed) - Math.min(b[1].held, b[1].failed))
    const pad = (n: number) => String(n).padStart(8)
    return [
      `${title}: ${taken.filter(([, n]) => n > 0).length} of ${taken.length} transitions taken, times each:`,
      ...taken.map(([k, n]) => `${pad(n)}  ${k}`),
      `guards (held / failed):`,
      ...guards.map(([name, { held, failed }]) => `${pad(held)} / ${failed}  ${name}`),
    ].join('\n')
  }
}
