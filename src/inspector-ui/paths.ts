// The graph-generated paths of the master chart (scripts/master-paths.ts, the
// ones test/master-machine.test.ts checks), as scripts/build-inspector.ts
// puts them into the page for the playground to step through. Some 6000
// paths of a few events each, drawn from a score of distinct events and a
// handful of end states: each path is stored as one character per event,
// which keeps them to about 50 kB of a 1.5 MB page.
import type { MasterEvent, MasterInput } from '../../machines/master.ts'

/** A path's events and end state are named by position in `events` and `ends`, one of these characters each. */
export const PATH_CODES = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz'

export interface PathsData {
  /** Every event a path takes, once. */
  readonly events: readonly MasterEvent[]
  /** Every state value a path ends in, once. */
  readonly ends: readonly unknown[]
  readonly explorations: ReadonlyArray<{
    /** As the path tests name it: the input and the caps. */
    readonly name: string
    readonly input: MasterInput
    /** The paths, space-separated: each the code of its end state, then those of its events. */
    readonly paths: string
  }>
}

export interface GeneratedPath {
  readonly events: readonly MasterEvent[]
  /** The state value the traversal reached at the end of the path. */
  readonly end: unknown
}

/** One exploration's paths, in the order the traversal gave them. */
export function decodePaths(data: PathsData, exploration: number): GeneratedPath[] {
  const x = data.explorations[exploration]
  if (!x) return []
  const code = (c: string) => PATH_CODES.indexOf(c)
  return x.paths.split(' ').map((p) => ({
    end: data.ends[code(p[0] ?? '')],
    events: Array.from(p.slice(1), (c) => data.events[code(c)] as MasterEvent),
  }))
}
