// A master chart run by hand, for the tests that script it event by event
// (test/master-log.test.ts, test/master-scenarios.test.ts): send events, then
// read what it emitted since the last reading, as log lines or as commands.
import { createActor } from 'xstate'
import {
  masterMachine,
  type MasterCommand,
  type MasterEvent,
  type MasterInput,
  type MasterSettings,
} from '../../machines/master.ts'

export const settings = (workers: number) => ({ workers, timeout: 30, gracefulTimeout: 30 })

export function startMaster(input: MasterInput = { settings: settings(2) }) {
  const actor = createActor(masterMachine, { input })
  let emitted: MasterCommand[] = []
  actor.on('*', (c) => emitted.push(c as MasterCommand))
  actor.start()
  /** Everything emitted since the last reading, and the slate wiped. */
  const take = () => {
    const taken = emitted
    emitted = []
    return taken
  }
  return {
    send(...events: MasterEvent[]) {
      for (const e of events) actor.send(e)
      return this
    },
    /** The log lines since the last reading, as `level message`. */
    said: (): string[] => take().flatMap((c) => (c.type === 'log' ? [`${c.level} ${c.message}`] : [])),
    /** The commands since the last reading, logs left out. */
    did: (): MasterCommand[] => take().filter((c) => c.type !== 'log'),
    get snapshot() {
      return actor.getSnapshot()
    },
  }
}

/** A HUP as the shell carries it out: the signal, then the settings it re-read (none: those in force). */
export const hup = (settings?: MasterSettings): MasterEvent[] => [
  { type: 'HUP' },
  settings ? { type: 'SETTINGS_READ', settings } : { type: 'SETTINGS_READ' },
]

export const ready = (...ids: number[]): MasterEvent[] => ids.map((id) => ({ type: 'WORKER_READY', id }))

export const exit = (id: number, code: number | null, signal: string | null = null): MasterEvent => ({
  type: 'WORKER_EXIT',
  id,
  code,
  signal,
})

/** A master of two workers (ids 1, 2), both serving, nothing emitted since. */
export function serving(input?: MasterInput) {
  const m = startMaster(input)
  m.send(...ready(1, 2)).did()
  return m
}
