// The master's chart (machines/master.ts) as the shell holds it: the actor,
// the queues its events wait in, and the one path that observes it. Every
// event the chart takes is seen once, through XState's `inspect`, as a
// ChartStep (the event, the chart before and after, the commands it
// emitted); status, the inspector, the control socket's waits and systemd
// all read these steps, and nothing else watches the actor.
import * as Context from 'effect/Context'
import * as Deferred from 'effect/Deferred'
import * as Effect from 'effect/Effect'
import * as Layer from 'effect/Layer'
import * as Queue from 'effect/Queue'
import { createActor, type Actor, type SnapshotFrom } from 'xstate'
import {
  masterMachine,
  type MasterCommand,
  type MasterContext,
  type MasterEvent,
  type Signal,
} from '../../../machines/master.ts'
import type { Settings } from '../../config/registry.ts'
import { masterClock } from '../event-sources.ts'
import { stateName, type ChartView } from '../status.ts'
import { MasterConfig } from './config.ts'

/** One event the chart took, and what it made of it. */
export interface ChartStep {
  readonly event: MasterEvent
  /** The context before the event. */
  readonly before: MasterContext
  /** The state value before and after the event. */
  readonly from: unknown
  readonly value: unknown
  readonly after: ChartView
  /** What the chart emitted while it took the event, in order. */
  readonly commands: readonly MasterCommand[]
  /** A tick that only moved the clock: nothing to show or count. */
  readonly quiet: boolean
}

export interface ChartShape {
  readonly actor: Actor<typeof masterMachine>
  /** Worker events, `corral ctl` events and hooks' outcomes: into the chart's input stream. */
  readonly events: Queue.Queue<MasterEvent>
  emit(event: MasterEvent): void
  /** Signals sent by corral itself (ctl, the inspector): with the OS's, into the input stream. */
  readonly signals: Queue.Queue<Signal>
  signal(name: Signal): void
  /** The chart now. */
  view(): ChartView
  /** Calls `observer` with every event's step from now on (in the order observers were added). */
  observe(observer: (step: ChartStep) => void): void
  /**
   * Calls `handler` with each command the chart emits, as it emits it. The
   * machine hands back the settings objects it was given (input, HUP) and
   * makes none: these are the shell's whole Settings, as the type says.
   */
  onCommand(handler: (command: MasterCommand<Settings>) => void): void
  /** The exit code, once the chart says `exit`. */
  readonly exitCode: Deferred.Deferred<number>
}

export class Chart extends Context.Service<Chart, ChartShape>()('corral/master/Chart') {
  static readonly layer = Layer.effect(
    Chart,
    Effect.gen(function* () {
      const { settings, log } = yield* MasterConfig
      const events = yield* Queue.unbounded<MasterEvent>()
      const signals = yield* Queue.unbounded<Signal>()
      const exitCode = yield* Deferred.make<number>()
      const observers: Array<(step: ChartStep) => void> = []
      const handlers: Array<(command: MasterCommand<Settings>) => void> = []
      // The snapshot after the last step: the next one starts from it. Events
      // sent before the actor starts wait in its mailbox, so the snapshot at
      // the time one is sent is not always the one it is taken from.
      let last: SnapshotFrom<typeof masterMachine> | undefined
      let emitted: MasterCommand[] = []
      const actor: Actor<typeof masterMachine> = createActor(masterMachine, {
        input: { settings, upgrade: settings.upgrade, now: masterClock() },
        inspect: (e) => {
          if (e.type !== '@xstate.snapshot' || e.actorRef !== actor) return
          const [before, after, commands] = [last, e.snapshot as SnapshotFrom<typeof masterMachine>, emitted]
          last = after
          emitted = []
          // The start is not an event of the chart's (its commands are carried out all the same).
          if (before === undefined || e.event.type === 'xstate.init') return
          const event = e.event as MasterEvent
          const step: ChartStep = {
            event,
            before: before.context,
            from: before.value,
            value: after.value,
            after: viewOf(after),
            commands,
            quiet: event.type === 'TICK' && commands.length === 0 && onlyTheClockMoved(before, after),
          }
          // An observer that throws is a bug of its own: the chart and the other observers go on.
          for (const observer of observers) {
            try {
              observer(step)
            } catch (err) {
              log.exception(`Observing the chart's ${event.type}`, err)
            }
          }
        },
      })
      actor.on('*', (command) => {
        emitted.push(command)
        for (const handler of handlers) handler(command as MasterCommand<Settings>)
      })
      return {
        actor,
        events,
        emit: (event) => void Queue.offerUnsafe(events, event),
        signals,
        signal: (name) => void Queue.offerUnsafe(signals, name),
        view: () => viewOf(actor.getSnapshot()),
        observe: (observer) => void observers.push(observer),
        onCommand: (handler) => void handlers.push(handler),
        exitCode,
      }
    }),
  )
}

function viewOf(snapshot: SnapshotFrom<typeof masterMachine>): ChartView {
  return {
    state: stateName(snapshot.value),
    context: snapshot.context,
    ready: snapshot.hasTag('ready'),
    // `dead` is final and has no tags: stopped for good is still stopping.
    draining: snapshot.hasTag('draining') || snapshot.status === 'done',
  }
}

/**
 * The chart's steps make a new object only for what they change: a tick that
 * left everything but the clock leaves every other field, and every worker
 * record, as it was. Compared by identity, not by printing the context.
 */
function onlyTheClockMoved(
  before: SnapshotFrom<typeof masterMachine>,
  after: SnapshotFrom<typeof masterMachine>,
): boolean {
  if (stateName(before.value) !== stateName(after.value)) return false
  const was = before.context as unknown as Record<string, unknown>
  const is = after.context as unknown as Record<string, unknown>
  if (Object.keys(was).length !== Object.keys(is).length) return false
  for (const key of Object.keys(is)) {
    if (key === 'now' || was[key] === is[key]) continue
    if (key !== 'workers') return false
    const [a, b] = [before.context.workers, after.context.workers]
    if (a.length !== b.length || a.some((w, i) => w !== b[i])) return false
  }
  return true
}
