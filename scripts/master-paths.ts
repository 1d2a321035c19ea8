// The graph-generated paths of the master statechart: xstate/graph explores
// machines/master.ts from its initial state with an explicit list of events
// (traversal is pure: nothing fires by itself, so every event the shell can
// send is listed here), seeing the context through `serialize`, an
// abstraction that is exact for this event set (see there). Workers are few
// and each exploration is capped so that it ends.
//
// Shared by the path tests (test/master-machine.test.ts replays and checks
// every path) and the inspector's build (scripts/build-inspector.ts puts the
// same paths into the playground, to step through). A build and test tool:
// nothing the package runs imports it (.dependency-cruiser.cjs).
import type { SnapshotFrom } from 'xstate'
import { getShortestPaths } from 'xstate/graph'
import { masterMachine, SIGNALS, type MasterEvent, type MasterInput } from '../machines/master.ts'

export type Snapshot = SnapshotFrom<typeof masterMachine>

const LATER = 10_000_000 // far beyond every timeout, deadline and back-off
// Seconds, as settings are given.
const TIMEOUT = 30
const GRACEFUL = 30
const UNKNOWN = 99 // an id the master never hands out in these runs

// Each exploration is capped so that it ends, and ends quickly: a state that
// has handed out more than maxId ids, or whose target is above maxTarget, is
// reached but not explored further.
export interface Exploration {
  readonly input: MasterInput
  readonly maxId: number
  readonly maxTarget: number
}

export const settings = (workers: number) => ({ workers, timeout: TIMEOUT, gracefulTimeout: GRACEFUL })

export const explorations: Exploration[] = [
  { input: { settings: settings(1), upgrade: 'manual' }, maxId: 2, maxTarget: 1 },
  { input: { settings: settings(2), upgrade: 'manual' }, maxId: 2, maxTarget: 2 },
  { input: { settings: settings(1), upgrade: 'auto' }, maxId: 2, maxTarget: 1 },
  // --standby 1: a spare behind one serving worker, promoted when it goes.
  { input: { settings: { ...settings(1), standby: 1 }, upgrade: 'manual' }, maxId: 2, maxTarget: 1 },
]

export const idEvents = (id: number): MasterEvent[] => [
  { type: 'WORKER_READY', id },
  { type: 'HEARTBEAT', id },
  { type: 'WORKER_RETIRING', id, cause: 'max-requests', reason: 'max requests' },
  // corral ctl worker kill PID
  { type: 'KILL_WORKER', id },
  ...[0, 1, 3, 4].map((code): MasterEvent => ({ type: 'WORKER_EXIT', id, code, signal: null })),
]

export const fixedEvents: MasterEvent[] = [
  ...SIGNALS.map(
    (signal): MasterEvent => (signal === 'WINCH' ? { type: signal, fromTerminal: true } : { type: signal }),
  ),
  { type: 'WINCH', fromTerminal: false },
  // USR2 the shell knows cannot work (corral is PID 1): refused, never reexecing.
  { type: 'USR2', refusal: 'corral is PID 1' },
  { type: 'WORKER_EXIT', id: UNKNOWN, code: 1, signal: null },
  { type: 'WORKER_READY', id: UNKNOWN },
  { type: 'HEARTBEAT', id: UNKNOWN },
  { type: 'WORKER_RETIRING', id: UNKNOWN, cause: 'max-requests', reason: 'max requests' },
  // corral ctl worker remove N, worker kill PID (src/master/control-commands.ts)
  { type: 'REMOVE_WORKERS', count: 1 },
  { type: 'KILL_WORKER', id: UNKNOWN },
]

// The shell's answer to the chart's readSettings command (src/master/main.ts),
// given only while one is owed: with none (no config file), with the
// settings it re-read (one worker and shorter timeouts, a change for every
// input explored), or refused (the config file became invalid). One such
// object is enough to tell apart the settings in force, the previous and the
// next ones; a second would multiply the states for nothing new.
export const settingsReadEvents: MasterEvent[] = [
  { type: 'SETTINGS_READ' },
  { type: 'SETTINGS_READ', settings: { workers: 1, timeout: 5, gracefulTimeout: 2 } },
  { type: 'SETTINGS_READ', refused: ['--certfile: no such file'] },
]

// The shell's answer to the chart's preExec command (src/master/main.ts), given only while it waits for one.
export const preExecEvents: MasterEvent[] = [
  { type: 'PRE_EXEC_DONE' },
  { type: 'PRE_EXEC_FAILED', reason: 'preExec threw' },
]

export const reexecEvents: Record<Snapshot['context']['childMaster'], MasterEvent[]> = {
  none: [],
  starting: [
    { type: 'REEXEC_FAILED', reason: 'spawn failed' },
    { type: 'REEXEC_READY' },
    { type: 'REEXEC_EXIT', code: 1, signal: null },
  ],
  ready: [{ type: 'REEXEC_EXIT', code: 0, signal: null }],
}

/**
 * The events explored from a state. The clock only moves forward: a TICK at
 * the same time (deadlines and heartbeats unchanged) and one far later (every
 * deadline passed, every back-off over; a gap that long is the master's own
 * pause to the suspend guard, so live workers get a fresh heartbeat timeout:
 * heartbeat aborts, which need the clock to advance in steps shorter than a
 * timeout, are the model tests' to reach). One HUP's read at a time is
 * explored (a second HUP is offered once the first is answered). Worker events
 * go to the workers the master knows and to UNKNOWN. The new
 * master of a USR2 reports as the shell reports it (src/master/reexec.ts): once,
 * READY before EXIT, FAILED instead of both.
 */
export function eventsFrom(snapshot: Snapshot): MasterEvent[] {
  const { now, workers, childMaster } = snapshot.context
  return [
    { type: 'TICK', now },
    { type: 'TICK', now: now + LATER },
    ...fixedEvents.filter((e) => e.type !== 'HUP' || snapshot.context.settingsReads === 0),
    ...(snapshot.context.settingsReads > 0 ? settingsReadEvents : []),
    ...(snapshot.matches({ active: { reexecing: 'preExec' } }) ? preExecEvents : []),
    ...reexecEvents[childMaster],
    ...workers.flatMap((w) => idEvents(w.id)),
  ]
}

/**
 * What of the context matters for what happens next, given eventsFrom:
 * - generations only relative to the current one;
 * - settings by which object they are (the input's or one a HUP carried): the
 *   chart passes them on untouched, and a test checks it passes the right ones;
 * - what an abandoned reload goes back to (target, settings, idle or not) only
 *   while a reload is in flight: the next reload sets it anew;
 * - times only as "back-off pending or not". Every worker not yet killed was
 *   spawned, last heard from and (when stopping) given its deadline at the
 *   current `now` or later: a TICK +LATER kills every stopping worker
 *   (deadline passed) and restarts every live one's heartbeat clock (the
 *   suspend guard), and a TICK at `now` changes nothing. So a worker's times
 *   decide nothing but the log text, and neither does the crash streak (it
 *   only sizes a back-off that TICK +LATER always ends).
 * The path tests check that the abstraction is faithful: replaying a path's
 * events must reach a state that serializes like the path's end state.
 */
const settingsLabels = new Map<object, number>()
function settingsLabel(settings: object): number {
  if (!settingsLabels.has(settings)) settingsLabels.set(settings, settingsLabels.size)
  return settingsLabels.get(settings) ?? -1
}

export function serialize(snapshot: Snapshot): string {
  const c = snapshot.context
  // What an abandon goes back to matters only while a reload is in flight: entering the next one sets it anew.
  const reloading = snapshot.matches({ active: { running: 'reloading' } })
  return JSON.stringify([
    snapshot.value,
    snapshot.status,
    c.target,
    reloading && [c.previousTarget, c.reloadFromIdle, settingsLabel(c.previousSettings)],
    settingsLabel(c.settings),
    c.nextSettings && settingsLabel(c.nextSettings),
    c.reloadQueued,
    c.settingsReads,
    c.exitCode,
    c.nextId,
    c.childMaster,
    c.upgrade,
    c.respawnAt > c.now,
    c.generation - c.previousGeneration,
    c.launching,
    c.workers.map((w) => [w.id, c.generation - w.generation, w.role, w.status]),
  ])
}

export const capped = (x: Exploration) => (s: Snapshot) =>
  s.context.nextId > x.maxId + 1 || s.context.target > x.maxTarget

export function explore(x: Exploration) {
  return getShortestPaths(masterMachine, {
    input: x.input,
    events: eventsFrom,
    serializeState: serialize,
    stopWhen: capped(x),
  })
}

/** How an exploration is named, in the tests and on the page. */
export const explorationName = (x: Exploration): string =>
  `workers=${x.input.settings.workers}${x.input.settings.standby ? ` standby=${x.input.settings.standby}` : ''} upgrade=${x.input.upgrade}, ids up to ${x.maxId}, target up to ${x.maxTarget}`

/** A generated path's events, without the traversal's own start. */
export const pathEvents = (path: ReturnType<typeof explore>[number]): MasterEvent[] =>
  path.steps.map((s) => s.event).filter((e) => (e.type as string) !== 'xstate.init')
