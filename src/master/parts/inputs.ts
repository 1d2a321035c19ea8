// Every input of the chart merged into one stream that feeds it: OS
// signals, the signals corral sends itself (`corral ctl`, --reload, the
// inspector), the clock, and the events the other parts put into the
// chart's queue (worker exits and messages, hooks' outcomes, settings read).
// A signal becomes its event at once, with nothing to wait for: signals
// reach the chart in the order they came.
import { readFileSync } from 'node:fs'
import { isatty } from 'node:tty'
import * as Effect from 'effect/Effect'
import * as Layer from 'effect/Layer'
import * as Stream from 'effect/Stream'
import type { MasterEvent, Signal } from '../../../machines/master.ts'
import { signals, ticks } from '../event-sources.ts'
import { reexecRefusal } from '../reexec.ts'
import { reloadRequests } from '../reload-watch.ts'
import { Chart } from './chart.ts'
import { MasterConfig } from './config.ts'

/** How often the machine's clock advances (heartbeats, deadlines, back-off). */
const TICK_MS = 100

/** `os`: a kill, a terminal; `corral`: corral itself (ctl, --reload, the inspector). */
interface SignalFrom {
  signal: Signal
  sent: 'os' | 'corral'
}

export const inputsLayer = Layer.effectDiscard(
  Effect.gen(function* () {
    const { settings, app, log } = yield* MasterConfig
    const chart = yield* Chart
    const toEvent = ({ signal, sent }: SignalFrom): MasterEvent => {
      log.info(`Handling signal: ${signal.toLowerCase()}`)
      if (signal === 'WINCH') return { type: 'WINCH', fromTerminal: sent === 'os' && inTerminalForeground() }
      // Whether a re-exec can work at all is the shell's to know; the chart decides before entering reexecing.
      if (signal === 'USR2') return { type: 'USR2', refusal: reexecRefusal() }
      return { type: signal }
    }
    const signalEvents = Stream.mergeAll(
      [
        signals.pipe(Stream.map((signal): SignalFrom => ({ signal, sent: 'os' }))),
        // --reload: a change to the app's files is a HUP (src/master/reload-watch.ts).
        Stream.merge(reloadRequests(settings, app, log), Stream.fromQueue(chart.signals)).pipe(
          Stream.map((signal): SignalFrom => ({ signal, sent: 'corral' })),
        ),
      ],
      { concurrency: 'unbounded' },
    ).pipe(Stream.map(toEvent))
    yield* Stream.mergeAll([signalEvents, ticks(TICK_MS), Stream.fromQueue(chart.events)], {
      concurrency: 'unbounded',
    }).pipe(
      Stream.runForEach((event) => Effect.sync(() => chart.actor.send(event))),
      Effect.forkScoped,
    )
  }),
)

/**
 * Whether a terminal's resize could have sent a WINCH: the kernel sends it to
 * the foreground process group of the resized terminal, so only a master
 * that has a controlling terminal and is in its foreground group can get one
 * that way (under `npx corral` or `npm start` it is not its group's leader,
 * which is why the group leader test gunicorn and old unicorn use is not
 * enough). -D detaches (a session of its own), and services, containers
 * without a tty and `corral … &` have no terminal or are in its background:
 * their WINCH is an operator's. Without /proc, whether stdin is a terminal
 * (unicorn's rule today).
 */
function inTerminalForeground(): boolean {
  try {
    const stat = readFileSync('/proc/self/stat', 'utf8')
    // After the command's ")": state ppid pgrp session tty_nr tpgid …
    const [, , pgrp, , ttyNr, tpgid] = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return Number(ttyNr) !== 0 && tpgid === pgrp
  } catch {
    return isatty(0)
  }
}
