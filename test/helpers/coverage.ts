// Which state nodes and transitions of a machine a set of runs exercised, read
// from XState's inspection events (microsteps carry the transitions taken).
// Shared by the master and worker machine tests.
import type { InspectionEvent, StateValue } from 'xstate'

export class Coverage {
  readonly nodes = new Set<string>()
  readonly transitions = new Set<string>()
  readonly #keyOf: ReadonlyMap<object, string>
  readonly #nodeIds: (value: StateValue) => readonly string[]

  /** keyOf: a transition's definition → its key; nodeIds: the state node ids a state value is in. */
  constructor(keyOf: ReadonlyMap<object, string>, nodeIds: (value: StateValue) => readonly string[]) {
    this.#keyOf = keyOf
    this.#nodeIds = nodeIds
  }

  readonly inspect = (ev: InspectionEvent): void => {
    if (ev.type !== '@xstate.microstep') return
    for (const t of ev._transitions) {
      const key = this.#keyOf.get(t)
      if (key) this.transitions.add(key)
    }
    for (const id of this.#nodeIds((ev.snapshot as unknown as { value: StateValue }).value)) this.nodes.add(id)
  }
}
