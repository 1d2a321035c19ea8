// Replays an exported timeline (src/master/inspector.ts) through the pure
// master machine: the playground steps through it in the browser, and the
// tests run it in Node to check both end in the same state. Quiet ticks are
// not kept in a timeline, so before each event the clock is first moved to
// where it was (a TICK to `nowBefore`): that tick was quiet when recorded,
// and is quiet again, so the replay takes the same transitions.
import { createActor, type Actor } from 'xstate'
import { masterMachine, type MasterCommand, type MasterEvent, type MasterInput } from '../../machines/master.ts'

/** The subset of an inspector timeline entry a replay reads. */
export interface ReplayEntry {
  readonly kind: string
  readonly event?: MasterEvent
  readonly nowBefore?: number
}

export interface TimelineFile {
  readonly corral: 'timeline'
  readonly version: 1
  readonly input: MasterInput
  readonly timeline: readonly ReplayEntry[]
}

export type MasterActor = Actor<typeof masterMachine>

/** A started master machine; `onCommand` hears each command it emits. */
export function startMaster(input: MasterInput, onCommand: (command: MasterCommand) => void = () => {}): MasterActor {
  const actor = createActor(masterMachine, { input })
  actor.on('*', (command) => onCommand(command as MasterCommand))
  actor.start()
  return actor
}

/** Feeds one timeline entry to the machine; entries that are not chart events (notes) change nothing. */
export function replayStep(actor: MasterActor, entry: ReplayEntry): void {
  if (entry.kind !== 'event' || entry.event === undefined) return
  if (entry.nowBefore !== undefined && actor.getSnapshot().context.now !== entry.nowBefore)
    actor.send({ type: 'TICK', now: entry.nowBefore })
  actor.send(entry.event)
}

/** The whole timeline, from the recorded input: the actor at the end. */
export function replayAll(file: TimelineFile): MasterActor {
  const actor = startMaster(file.input)
  for (const entry of file.timeline) replayStep(actor, entry)
  return actor
}
