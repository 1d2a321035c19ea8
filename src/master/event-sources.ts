// The master's inputs as Effect streams: OS signals and the clock. Child
// exits and IPC messages arrive through a queue the worker pool writes to;
// src/master/main.ts merges all of them into the one stream that feeds the actor.
import * as Effect from 'effect/Effect'
import * as Queue from 'effect/Queue'
import * as Stream from 'effect/Stream'
import type { MasterEvent, Signal } from '../../machines/master.ts'
import { SIGNALS } from '../../machines/master.ts'

/**
 * Every signal of the contract, for as long as the stream runs. Installing
 * these listeners is what takes SIGINT/SIGTERM away from Node's defaults
 * (and SIGUSR1 away from the inspector): in the master they belong to the
 * statechart.
 */
export const signals: Stream.Stream<Signal> = Stream.callback<Signal>((queue) =>
  Effect.acquireRelease(
    Effect.sync(() =>
      SIGNALS.map((name) => {
        const listener = () => Queue.offerUnsafe(queue, name)
        process.on(`SIG${name}`, listener)
        return [name, listener] as const
      }),
    ),
    (installed) =>
      Effect.sync(() => {
        for (const [name, listener] of installed) process.off(`SIG${name}`, listener)
      }),
  ),
)

/**
 * The master's clock, in milliseconds: monotonic, so that an NTP step or a
 * settimeofday moves no deadline and ages no heartbeat. Wall time is for the
 * logs only. The machine reads time only from this (its input, then TICKs).
 */
export const masterClock = (): number => performance.now()

export const ticks = (everyMs: number): Stream.Stream<MasterEvent> =>
  Stream.tick(`${everyMs} millis`).pipe(Stream.map(() => ({ type: 'TICK', now: masterClock() }) as const))
