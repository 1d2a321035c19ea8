// Runs the tour's steps (tour.ts) through the pure master: the playground's
// "do it" and test/tour.test.ts turn each action into the same chart events
// here, so the page and the test cannot take different paths.
import type { MasterCommand, MasterContext, MasterEvent } from '../../machines/master.ts'
import { startMaster } from './replay.ts'
import { TOUR_INPUT, type TourAction, type TourStep } from './tour.ts'

/** The chart events one action stands for, given the master's context when it is taken. */
function actionEvents(action: TourAction, context: MasterContext): MasterEvent[] {
  if ('event' in action) return [action.event]
  if ('tick' in action) return [{ type: 'TICK', now: context.now + action.tick }]
  const status = 'allReady' in action ? 'booting' : 'stopping'
  return context.workers
    .filter((w) => w.status === status)
    .map(
      (w): MasterEvent =>
        status === 'booting'
          ? { type: 'WORKER_READY', id: w.id }
          : { type: 'WORKER_EXIT', id: w.id, code: 0, signal: null },
    )
}

/**
 * One action carried out: its events sent in order. `allReady` goes on until
 * no worker is booting, since a ready worker can make the master spawn more
 * (the launch's first worker, then the rest; spares behind a full set).
 */
export function takeAction(action: TourAction, context: () => MasterContext, send: (event: MasterEvent) => void): void {
  for (let round = 0; round < 10; round++) {
    const events = actionEvents(action, context())
    for (const event of events) send(event)
    if (!('allReady' in action) || events.length === 0) return
  }
}

/** A state value as dotted paths, one per active leaf. */
export function dotted(value: unknown): string[] {
  if (typeof value === 'string') return [value]
  if (!value || typeof value !== 'object') return []
  return Object.entries(value).flatMap(([k, v]) => dotted(v).map((rest) => `${k}.${rest}`))
}

export interface StepOutcome {
  readonly state: string
  /** Commands emitted after the setup (the master's start included when there is none). */
  readonly emitted: readonly MasterCommand[]
  readonly workers: readonly string[]
}

/** A step from a fresh master, in Node: where the chart lands. */
export function runStep(step: TourStep): StepOutcome {
  const commands: MasterCommand[] = []
  const actor = startMaster(TOUR_INPUT, (c) => commands.push(c))
  const take = (actions: readonly TourAction[]) => {
    for (const action of actions)
      takeAction(
        action,
        () => actor.getSnapshot().context,
        (event) => actor.send(event),
      )
  }
  take(step.setup)
  const mark = step.setup.length === 0 ? 0 : commands.length
  take(step.act)
  const snapshot = actor.getSnapshot()
  actor.stop()
  return {
    state: dotted(snapshot.value).join(', '),
    emitted: commands.slice(mark),
    workers: snapshot.context.workers.map((w) => w.status),
  }
}
