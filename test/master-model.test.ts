// Model-based tests of the master statechart with fast-check: random
// sequences of what the shell can send (signals, worker reports for workers
// the master knows and for ids it does not, the clock moving on, the new
// master of a USR2 reporting) run against a real actor, with a small model of
// what must hold beside it. Every invariant is checked after every event; a
// failure prints the exact events that led to it.
import { fc, test } from '@fast-check/vitest'
import { isDeepStrictEqual } from 'node:util'
import { describe, expect, it } from 'vitest'
import { createActor, type Actor } from 'xstate'
import { MAX_BACKOFF_MS } from '../machines/master-workers.ts'
import { Coverage } from './helpers/coverage.ts'
import { distribution, replayParams, replaying, sequenceLength } from './helpers/fc-replay.ts'
import {
  masterMachine,
  SIGNALS,
  type MasterCommand,
  type MasterEvent,
  type MasterInput,
  type MasterSettings,
  type Signal,
} from '../machines/master.ts'

type Master = Actor<typeof masterMachine>
type Snapshot = ReturnType<Master['getSnapshot']>

/** Every run's actor counts into this: which transitions and guards of the chart the whole run took. */
const coverage = new Coverage(masterMachine)
/** How many events each run sent before the master was dead (or the run ended). */
const depths: number[] = []
/**
 * The deep paths the generators are weighted towards, and how many times the
 * runs took each: each needs many steps in the right order, and the test
 * fails if one is never reached.
 */
const deepPaths = new Map<string, number>(
  [
    'the back-off reaches its 10 s cap',
    'a heartbeat abort',
    "a stop signal during a HUP's settings read",
    'settings read after the master began to stop',
    'a new master fails to start after a rollback',
    'a signal during a hand-over',
    'a spare takes over',
    'a crash storm outlasts the spares',
  ].map((name) => [name, 0]),
)
const tookPath = (name: string) => deepPaths.set(name, (deepPaths.get(name) ?? 0) + 1)
const isSignal = (type: string): boolean => (SIGNALS as readonly string[]).includes(type)

// ---------------------------------------------------------------------------
// What the shell may do next, before it is bound to the actor's state: which
// worker a report concerns is picked among those the master knows when the
// step runs (or an id it does not know).

type WorkerPick = { readonly index: number; readonly unknown: boolean }

type Intent =
  | { readonly kind: 'signal'; readonly signal: Exclude<Signal, 'HUP' | 'WINCH'> }
  | { readonly kind: 'winch'; readonly fromTerminal: boolean }
  /** USR2 as the shell sends it when it is PID 1. */
  | { readonly kind: 'usr2Refused' }
  | { readonly kind: 'hup' }
  /** The shell's answer to a `readSettings`: the settings it re-read, or none (no config, or the read failed); sent only when one is owed. */
  | { readonly kind: 'settingsRead'; readonly settings: MasterSettings | undefined }
  | { readonly kind: 'ready'; readonly pick: WorkerPick }
  /** Every booting worker reports ready, in order. */
  | { readonly kind: 'allReady' }
  | { readonly kind: 'heartbeat'; readonly pick: WorkerPick }
  | { readonly kind: 'retiring'; readonly pick: WorkerPick }
  | { readonly kind: 'exit'; readonly pick: WorkerPick; readonly code: number | null }
  /** The newest live worker crashes (exit 1): the step a crash streak is made of. */
  | { readonly kind: 'crash' }
  | { readonly kind: 'tick'; readonly dt: number }
  /** The clock to one of the instants the model expects something at (a deadline, a heartbeat timeout, the end of a back-off), − 1, exactly, or + 1 ms. */
  | { readonly kind: 'boundary'; readonly index: number; readonly offset: -1 | 0 | 1 }
  /** The clock to the end of the back-off the model expects (if one is pending). */
  | { readonly kind: 'backoffOver' }
  /** The new master of a USR2 reports; sent only when the shell could send it. */
  | { readonly kind: 'reexec'; readonly report: 'failed' | 'ready' | 'exit' }
  /** The shell's answer to a `preExec` command: the hook ran, or it failed; sent only when one is owed. */
  | { readonly kind: 'preExec'; readonly failed: boolean }
  /** `corral ctl worker remove N` and `worker kill PID` (src/master/control-commands.ts). */
  | { readonly kind: 'removeWorkers'; readonly count: number }
  | { readonly kind: 'killWorker'; readonly pick: WorkerPick }

const pickArb: fc.Arbitrary<WorkerPick> = fc.record({
  index: fc.nat(7),
  unknown: fc.oneof({ weight: 7, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) }),
})

const intentArb: fc.Arbitrary<Intent> = fc.oneof(
  // Stop signals are rarer than the rest, or most runs would be over early.
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('signal' as const),
      signal: fc.constantFrom('QUIT' as const, 'TERM' as const, 'INT' as const),
    }),
  },
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant('signal' as const),
      signal: fc.constantFrom('TTIN' as const, 'TTOU' as const, 'USR1' as const, 'USR2' as const),
    }),
  },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('winch' as const), fromTerminal: fc.boolean() }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'usr2Refused' as const }) },
  { weight: 4, arbitrary: fc.constant({ kind: 'hup' as const }) },
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant('settingsRead' as const),
      // The timeouts change too: an abandoned reload must put back the old ones.
      settings: fc.option(
        fc.record({
          workers: fc.integer({ min: 1, max: 4 }),
          timeout: fc.constantFrom(0, 30),
          gracefulTimeout: fc.constantFrom(2, 30),
          standby: fc.constantFrom(0, 1, 2),
        }),
        { nil: undefined, freq: 4 },
      ),
    }),
  },
  { weight: 8, arbitrary: fc.record({ kind: fc.constant('ready' as const), pick: pickArb }) },
  { weight: 4, arbitrary: fc.constant({ kind: 'allReady' as const }) },
  { weight: 6, arbitrary: fc.record({ kind: fc.constant('heartbeat' as const), pick: pickArb }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('retiring' as const), pick: pickArb }) },
  // Exits: mostly crashes (0, 1, a signal); 3 and 4 (a refusal to boot) now and then.
  {
    weight: 6,
    arbitrary: fc.record({ kind: fc.constant('exit' as const), pick: pickArb, code: fc.constantFrom(0, 1, null) }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant('exit' as const), pick: pickArb, code: fc.constantFrom(3, 4) }),
  },
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant('tick' as const),
      // the same instant; inside a back-off or a young worker's 5 s; steps
      // that add up to a timeout; around the 30 s timeouts (past them, a gap
      // the suspend guard forgives); far past everything
      dt: fc.oneof(
        fc.constant(0),
        fc.integer({ min: 1, max: 6_000 }),
        fc.integer({ min: 7_000, max: 15_000 }),
        fc.integer({ min: 25_000, max: 40_000 }),
        fc.integer({ min: 100_000, max: 10_000_000 }),
      ),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({ kind: fc.constant('removeWorkers' as const), count: fc.integer({ min: 1, max: 4 }) }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('killWorker' as const), pick: pickArb }) },
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant('boundary' as const),
      index: fc.nat(7),
      offset: fc.constantFrom(-1 as const, 0 as const, 1 as const),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('reexec' as const),
      report: fc.constantFrom('failed' as const, 'ready' as const, 'exit' as const),
    }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('preExec' as const), failed: fc.boolean() }) },
)

// Paths that matter and that single random steps almost never take, as runs
// of steps that take them (each still a plain sequence of intents, so a
// failure shrinks and prints the same way).
const signal = (signal: Exclude<Signal, 'HUP' | 'WINCH'>): Intent => ({ kind: 'signal', signal })
const preExecDone: Intent = { kind: 'preExec', failed: false }
const reexec = (report: 'failed' | 'ready' | 'exit'): Intent => ({ kind: 'reexec', report })
const someSettings = fc.record({
  workers: fc.integer({ min: 1, max: 4 }),
  timeout: fc.constantFrom(0, 30),
  gracefulTimeout: fc.constantFrom(2, 30),
  standby: fc.constantFrom(0, 1, 2),
})
const scenarioArb: fc.Arbitrary<Intent[]> = fc.oneof(
  // Spares ready, then serving workers dying one after another: each place
  // goes to a spare at once, until they run out and the back-off takes over.
  fc
    .integer({ min: 2, max: 6 })
    .map((n): Intent[] => [
      { kind: 'allReady' },
      { kind: 'allReady' },
      ...Array.from({ length: n }, (): Intent[] => [{ kind: 'crash' }, { kind: 'allReady' }]).flat(),
    ]),
  // A long crash streak: young workers dying one after the other, each
  // replacement spawned when the back-off ends, until it reaches the 10 s cap.
  fc
    .integer({ min: 3, max: 12 })
    .map((n) => Array.from({ length: n }, (): Intent[] => [{ kind: 'crash' }, { kind: 'backoffOver' }]).flat()),
  // A heartbeat abort: ready workers that stop beating, the clock moving on in
  // steps shorter than the timeout (one step past it is forgiven as a suspend).
  fc
    .array(fc.integer({ min: 5_000, max: 9_999 }), { minLength: 4, maxLength: 8 })
    .map((dts): Intent[] => [{ kind: 'allReady' }, ...dts.map((dt): Intent => ({ kind: 'tick', dt }))]),
  // A stop signal while a HUP's settings are being read; the read answers afterwards.
  fc
    .tuple(
      fc.constantFrom<Exclude<Signal, 'HUP' | 'WINCH'>>('TERM', 'INT', 'QUIT'),
      fc.option(someSettings, { nil: undefined }),
    )
    .map(([stop, settings]): Intent[] => [{ kind: 'hup' }, signal(stop), { kind: 'settingsRead', settings }]),
  // A reload taken through: HUP, the settings, every new worker ready.
  fc
    .option(someSettings, { nil: undefined })
    .map((settings): Intent[] => [
      { kind: 'hup' },
      { kind: 'settingsRead', settings },
      { kind: 'allReady' },
      { kind: 'allReady' },
    ]),
  // A rollback (the new master dies after it served, the old one takes over
  // again), then a new master that fails to start, or dies before it serves.
  // (Only a manual upgrade can roll back: weighted up to make up for it.)
  {
    weight: 3,
    arbitrary: fc
      .tuple(fc.boolean(), fc.constantFrom<'failed' | 'exit'>('failed', 'exit'))
      .map(([winch, fate]): Intent[] => [
        signal('USR2'),
        preExecDone,
        reexec('ready'),
        ...(winch ? [{ kind: 'winch', fromTerminal: false } as const] : []),
        reexec('exit'),
        { kind: 'allReady' },
        signal('USR2'),
        preExecDone,
        reexec(fate),
      ]),
  },
  // Signals and reports during a hand-over to a ready new master.
  fc
    .array(intentArb, { minLength: 1, maxLength: 4 })
    .map((during): Intent[] => [signal('USR2'), preExecDone, reexec('ready'), ...during]),
  // The operator's QUIT, then another, while handing over.
  fc.constant<Intent[]>([signal('USR2'), preExecDone, reexec('ready'), signal('QUIT'), signal('QUIT')]),
  // A USR2 that comes to nothing: the preExec hook fails, the new master cannot be spawned, or dies starting;
  // or a stop comes first and the spawn's failure, which Node reports after the fact, arrives during the drain.
  fc.constantFrom<Intent[]>(
    [signal('USR2'), { kind: 'preExec', failed: true }],
    [signal('USR2'), preExecDone, reexec('failed')],
    [signal('USR2'), preExecDone, reexec('exit')],
    [signal('USR2'), preExecDone, signal('QUIT'), reexec('failed')],
    [signal('USR2'), preExecDone, signal('TERM'), reexec('failed')],
  ),
  // A reload (from serving, or from idle after WINCH) whose new generation
  // refuses to boot: it is abandoned, back to what served before.
  fc
    .tuple(fc.boolean(), fc.constantFrom(3, 4), fc.nat(7))
    .map(([fromIdle, code, index]): Intent[] => [
      { kind: 'allReady' },
      ...(fromIdle ? [{ kind: 'winch', fromTerminal: false } as const] : []),
      { kind: 'hup' },
      { kind: 'settingsRead', settings: undefined },
      { kind: 'exit', pick: { index, unknown: false }, code },
    ]),
)

/** The steps of a run: mostly single random intents, now and then a scenario. */
const intentsArb = (maxLength: number): fc.Arbitrary<Intent[]> =>
  fc
    .array(
      fc.oneof({ weight: 12, arbitrary: intentArb.map((intent) => [intent]) }, { weight: 1, arbitrary: scenarioArb }),
      { maxLength, size: 'max' },
    )
    .map((chunks) => chunks.flat())

const inputArb: fc.Arbitrary<MasterInput> = fc.record({
  settings: fc.record({
    workers: fc.integer({ min: 1, max: 3 }),
    timeout: fc.constantFrom(0, 30),
    gracefulTimeout: fc.constantFrom(2, 30),
    // --standby: spares beside the serving workers (absent: none).
    standby: fc.constantFrom(undefined, 0, 1, 2),
  }),
  upgrade: fc.constantFrom('manual' as const, 'auto' as const),
  // Random clocks: the machine must not care where time starts.
  now: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 2_000_000_000_000 })),
})

// ---------------------------------------------------------------------------
// The simulation: the actor, what it emitted, and the model beside it.

const phaseOf = (s: Snapshot): 'active' | 'graceful' | 'quick' | 'dead' =>
  s.status === 'done'
    ? 'dead'
    : s.matches({ draining: 'quick' })
      ? 'quick'
      : s.matches({ draining: 'graceful' })
        ? 'graceful'
        : 'active'
const RANK = { active: 0, graceful: 1, quick: 2, dead: 3 } as const

const isLive = (status: string) => status === 'booting' || status === 'running'

// The timing rules of spec/lifecycle.md, written out again here on purpose:
// the model must not borrow the machine's arithmetic, or a wrong deadline
// would be checked against itself.
/** A quick stop SIGKILLs at most this long after it was sent. */
const QUICK_STOP_MS = 1_000
/** A worker that dies younger than this counts towards the crash streak. */
const MIN_UPTIME_MS = 5_000
const backoffMs = (streak: number) => (streak === 0 ? 0 : Math.min(100 * 2 ** (streak - 1), MAX_BACKOFF_MS))

/**
 * The model's own view of a worker, built only from the events the test sent
 * and the commands the machine emitted: never read from the machine's context.
 */
interface Shadow {
  readonly id: number
  readonly generation: number
  /** From its spawnWorker command; a promoteSpare makes a spare serving. */
  role: 'serving' | 'spare'
  status: 'booting' | 'running' | 'stopping' | 'killed'
  spawnedAt: number
  lastBeat: number
  /** From the settings its spawnWorker command carried. */
  readonly timeoutMs: number
  /** When a stopping worker is due a SIGKILL. */
  deadline: number
}

class Sim {
  readonly actor: Master
  readonly log: MasterEvent[] = []
  readonly emitted: MasterCommand[] = []
  /** Every id ever spawned. */
  readonly spawned = new Set<number>()
  // The model.
  target: number
  /** The settings new workers get; those a HUP re-read, until its reload starts; what an abandon goes back to. */
  settings: MasterSettings
  nextSettings: MasterSettings | undefined
  previous: { target: number; settings: MasterSettings } | undefined
  /** The code the master must exit with: a halt's 3 or 4, else 0. */
  exitCode = 0
  exits = 0
  /** The furthest the master has gone towards its end. */
  phase: keyof typeof RANK = 'active'
  // The model of commands and time: every worker spawned and not yet exited,
  // the clock, the crash streak and its back-off, a HUP waiting its turn.
  readonly shadows = new Map<number, Shadow>()
  now: number
  crashStreak = 0
  respawnAt = 0
  queued = false
  /** The generation new workers belong to, as the reload commands tell it. */
  generation = 0
  /** A `preExec` command the shell has not answered yet. */
  preExecOwed = false
  /** readSettings commands not answered yet (the shell reads them one at a time, in order). */
  settingsOwed = 0

  /** A new master that served was lost and this master went on: a rollback. */
  rolledBack = false

  /** Whether to hold the machine to convergence (off where a test is about something else). */
  readonly convergence: boolean

  constructor(input: MasterInput, { convergence = true } = {}) {
    this.convergence = convergence
    this.target = Math.max(1, input.settings.workers)
    this.settings = input.settings
    this.now = input.now ?? 0
    this.actor = createActor(coverage.machine, { input, inspect: coverage.inspect })
    this.actor.on('*', (cmd: MasterCommand) => this.emitted.push(cmd))
    this.actor.start()
    coverage.visit(this.snapshot.value)
    this.check(undefined, 0, this.snapshot)
  }

  get snapshot(): Snapshot {
    return this.actor.getSnapshot()
  }

  fail(why: string): never {
    throw new Error(
      `${why}\n  after events: ${JSON.stringify(this.log)}\n  state ${JSON.stringify(this.snapshot.value)}, workers ${JSON.stringify(this.snapshot.context.workers)}`,
    )
  }

  /** The concrete events an intent becomes in the actor's current state (maybe none). */
  resolve(intent: Intent): MasterEvent[] {
    const ctx = this.snapshot.context
    // A report concerns a worker the master knows (for READY and a refusal
    // to boot, preferably one still booting), or now and then an id it never
    // handed out.
    const pick = ({ index, unknown }: WorkerPick, preferBooting = false) => {
      const booting = ctx.workers.filter((w) => w.status === 'booting')
      const ws = preferBooting && booting.length > 0 ? booting : ctx.workers
      const w = ws[index % Math.max(1, ws.length)]
      return unknown || !w ? ctx.nextId + 1000 + index : w.id
    }
    switch (intent.kind) {
      case 'signal':
        return [{ type: intent.signal }]
      case 'winch':
        return [{ type: 'WINCH', fromTerminal: intent.fromTerminal }]
      case 'usr2Refused':
        return [{ type: 'USR2', refusal: 'corral is PID 1' }]
      case 'hup':
        return [{ type: 'HUP' }]
      case 'settingsRead':
        // As src/master/main.ts answers `readSettings`: once each, in order, whatever state the master is in by then.
        if (this.settingsOwed === 0) return []
        this.settingsOwed--
        return [intent.settings ? { type: 'SETTINGS_READ', settings: intent.settings } : { type: 'SETTINGS_READ' }]
      case 'ready':
        return [{ type: 'WORKER_READY', id: pick(intent.pick, true) }]
      case 'allReady':
        return ctx.workers.filter((w) => w.status === 'booting').map((w) => ({ type: 'WORKER_READY', id: w.id }))
      case 'heartbeat':
        return [{ type: 'HEARTBEAT', id: pick(intent.pick) }]
      case 'retiring':
        return [{ type: 'WORKER_RETIRING', id: pick(intent.pick), cause: 'max-requests', reason: 'max requests' }]
      case 'exit':
        // A refusal to boot (3, 4) comes, more often than not, from a worker still booting.
        return [
          {
            type: 'WORKER_EXIT',
            id: pick(intent.pick, intent.code === 3 || intent.code === 4),
            code: intent.code,
            signal: intent.code === null ? 'SIGKILL' : null,
          },
        ]
      case 'crash': {
        const newest = ctx.workers.filter((w) => isLive(w.status) && w.role === 'serving').at(-1)
        return newest ? [{ type: 'WORKER_EXIT', id: newest.id, code: 1, signal: null }] : []
      }
      case 'tick':
        return [{ type: 'TICK', now: ctx.now + intent.dt }]
      case 'backoffOver':
        return this.respawnAt > ctx.now ? [{ type: 'TICK', now: this.respawnAt }] : []
      case 'removeWorkers':
        return [{ type: 'REMOVE_WORKERS', count: intent.count }]
      case 'killWorker':
        return [{ type: 'KILL_WORKER', id: pick(intent.pick) }]
      case 'boundary': {
        const instants = this.instants()
        const at = instants[intent.index % Math.max(1, instants.length)]
        return at === undefined ? [] : [{ type: 'TICK', now: Math.max(ctx.now, at + intent.offset) }]
      }
      case 'preExec':
        // As src/master/main.ts answers a `preExec` command: once, whatever state the master is in by then.
        if (!this.preExecOwed) return []
        this.preExecOwed = false
        return [intent.failed ? { type: 'PRE_EXEC_FAILED', reason: 'preExec threw' } : { type: 'PRE_EXEC_DONE' }]
      case 'reexec':
        // As src/master/reexec.ts reports a new master: once, READY before EXIT, FAILED instead of both.
        if (intent.report === 'failed')
          return ctx.childMaster === 'starting' ? [{ type: 'REEXEC_FAILED', reason: 'spawn failed' }] : []
        if (intent.report === 'ready') return ctx.childMaster === 'starting' ? [{ type: 'REEXEC_READY' }] : []
        return ctx.childMaster !== 'none' ? [{ type: 'REEXEC_EXIT', code: 0, signal: null }] : []
    }
  }

  /** When, by the model, something is due: a SIGKILL, an abort, the end of the back-off, a worker no longer young. */
  instants(): number[] {
    const instants = [this.respawnAt]
    for (const w of this.shadows.values()) {
      if (w.status === 'stopping') instants.push(w.deadline)
      if (isLive(w.status) && w.timeoutMs > 0) instants.push(w.lastBeat + w.timeoutMs)
      instants.push(w.spawnedAt + MIN_UPTIME_MS)
    }
    return instants.filter((t) => t + 1 >= this.now)
  }

  run(intent: Intent): void {
    for (const event of this.resolve(intent)) this.send(event)
  }

  send(event: MasterEvent): void {
    const before = this.snapshot
    const from = this.emitted.length
    this.log.push(event)
    this.updateModel(before, event)
    const halt = this.expectHalt(before, event)
    this.actor.send(event)
    const after = this.snapshot
    this.check(event, from, after, before, halt)
    this.notePaths(before, event, after, this.emitted.slice(from))
  }

  /** Counts the deep paths (deepPaths) this event took. */
  notePaths(before: Snapshot, event: MasterEvent, after: Snapshot, commands: readonly MasterCommand[]): void {
    const active = phaseOf(before) === 'active'
    const child = before.context.childMaster
    if (event.type === 'WORKER_EXIT' && after.context.respawnAt - after.context.now === MAX_BACKOFF_MS)
      tookPath('the back-off reaches its 10 s cap')
    if (commands.some((c) => c.type === 'abortWorker')) tookPath('a heartbeat abort')
    if (
      (event.type === 'TERM' || event.type === 'INT' || event.type === 'QUIT') &&
      active &&
      before.context.settingsReads > 0
    )
      tookPath("a stop signal during a HUP's settings read")
    if (event.type === 'SETTINGS_READ' && !active) tookPath('settings read after the master began to stop')
    if (event.type === 'REEXEC_EXIT' && child === 'ready' && phaseOf(after) === 'active') this.rolledBack = true
    if (this.rolledBack && child === 'starting' && (event.type === 'REEXEC_FAILED' || event.type === 'REEXEC_EXIT'))
      tookPath('a new master fails to start after a rollback')
    if (isSignal(event.type) && child === 'ready') tookPath('a signal during a hand-over')
    if (commands.some((c) => c.type === 'promoteSpare')) tookPath('a spare takes over')
    if (
      (after.context.settings.standby ?? 0) > 0 &&
      commands.some((c) => c.type === 'spawnWorker' && c.role === 'serving') &&
      after.context.crashStreak > 1
    )
      tookPath('a crash storm outlasts the spares')
  }

  /** The model's own bookkeeping of the target and the settings, as far as the event decides them. */
  updateModel(before: Snapshot, event: MasterEvent): void {
    if (phaseOf(before) !== 'active') return
    if (event.type === 'SETTINGS_READ' && event.settings) this.nextSettings = event.settings
    if (event.type === 'TTIN') this.target += 1
    if (event.type === 'TTOU') this.target = Math.max(1, this.target - 1)
    if (event.type === 'REMOVE_WORKERS') this.target = Math.max(1, this.target - event.count)
  }

  /** A reload starts (now, or queued earlier) with the settings a HUP re-read; an abandoned one goes back. */
  followReloads(commands: readonly MasterCommand[]): void {
    for (const cmd of commands) {
      if (cmd.type === 'reloadStarted') {
        this.previous = { target: this.target, settings: this.settings }
        if (this.nextSettings) {
          this.target = Math.max(1, this.nextSettings.workers)
          this.settings = this.nextSettings
        }
        this.nextSettings = undefined
        if (cmd.settings !== this.settings) this.fail('a reload started without the settings the HUP re-read')
      }
      if (cmd.type === 'reloadAbandoned') {
        if (!this.previous) this.fail('a reload abandoned that never started')
        this.target = this.previous.target
        this.settings = this.previous.settings
        if (cmd.settings !== this.settings) this.fail('an abandoned reload did not put back the old settings')
      }
    }
  }

  /**
   * A worker that exits 3 or 4 while booting halts the master (exit with that
   * code), unless it belongs to the new generation of a reload in flight,
   * which is then abandoned, or other workers are running, when it is a crash.
   */
  expectHalt(before: Snapshot, event: MasterEvent): 'halt' | 'abandon' | undefined {
    if (event.type !== 'WORKER_EXIT' || (event.code !== 3 && event.code !== 4)) return undefined
    if (phaseOf(before) !== 'active' || before.matches({ active: { running: 'idle' } })) return undefined
    const w = before.context.workers.find((x) => x.id === event.id)
    if (w?.status !== 'booting') return undefined
    if (before.matches({ active: { running: 'reloading' } }) && w.generation === before.context.generation)
      return 'abandon'
    // While other workers serve, a replacement that cannot boot is a crash, not an outage.
    if (before.context.workers.some((x) => x.id !== event.id && x.status === 'running')) return undefined
    this.exitCode = event.code
    return 'halt'
  }

  check(
    event: MasterEvent | undefined,
    from: number,
    after: Snapshot,
    before?: Snapshot,
    halt?: 'halt' | 'abandon',
  ): void {
    const ctx = after.context
    const commands = this.emitted.slice(from)
    const known = new Set([...(before?.context.workers ?? []), ...ctx.workers].map((w) => w.id))

    // Commands: fresh spawns, no command for an id the master does not know,
    // nothing after exit.
    for (const cmd of commands) {
      if (this.exits > 0) this.fail(`${JSON.stringify(cmd)} after exit`)
      // A log line says something: the operator reads these to know what the master did.
      if (cmd.type === 'log' && !/\w{3}/.test(cmd.message)) this.fail(`an empty log line: ${JSON.stringify(cmd)}`)
      if (cmd.type === 'spawnWorker') {
        if (this.spawned.has(cmd.id) || before?.context.workers.some((w) => w.id === cmd.id))
          this.fail(`spawnWorker ${cmd.id}: not a fresh id`)
        this.spawned.add(cmd.id)
      }
      if (
        (cmd.type === 'stopWorker' || cmd.type === 'killWorker' || cmd.type === 'abortWorker') &&
        !known.has(cmd.id)
      ) {
        this.fail(`${cmd.type} for ${cmd.id}, a worker the master does not know`)
      }
      if (cmd.type === 'exit') {
        this.exits++
        if (cmd.code !== this.exitCode) this.fail(`exit ${cmd.code}, expected ${this.exitCode}`)
      }
    }

    // A HUP reaches the chart at once and asks for the settings, nothing
    // more: the reload waits for them. Stopping, it asks for nothing.
    if (event?.type === 'HUP' && before) {
      const reads = commands.filter((c) => c.type === 'readSettings').length
      if (reads !== (phaseOf(before) === 'active' ? 1 : 0))
        this.fail(`a HUP in ${phaseOf(before)} asked for the settings ${reads} time(s)`)
      if (commands.some((c) => c.type !== 'readSettings' && c.type !== 'log'))
        this.fail('a HUP did more than ask for the settings')
    }
    this.settingsOwed += commands.filter((c) => c.type === 'readSettings').length
    if (ctx.settingsReads !== this.settingsOwed)
      this.fail(`the chart counts ${ctx.settingsReads} settings reads owed, the shell ${this.settingsOwed}`)
    // Settings that come back while stopping (a TERM during a HUP's read) start nothing.
    if (event?.type === 'SETTINGS_READ' && before && phaseOf(before) !== 'active') {
      if (commands.some((c) => c.type !== 'log')) this.fail('settings read while stopping emitted a command')
      if (!isDeepStrictEqual(before.value, after.value)) this.fail('settings read while stopping changed state')
    }
    // The target and the settings. Settings read for a HUP in steady or idle
    // reload at once; anywhere else in active the reload is queued. An
    // abandoned reload goes back to the size and settings the old generation served with.
    const started = commands.some((c) => c.type === 'reloadStarted')
    if (event?.type === 'SETTINGS_READ' && before) {
      const atOnce =
        before.matches({ active: { running: 'steady' } }) || before.matches({ active: { running: 'idle' } })
      if (atOnce && !started) this.fail('settings read in steady or idle did not start a reload')
      if (!atOnce && phaseOf(before) === 'active' && !ctx.reloadQueued && !started)
        this.fail('settings read during a boot, reload or re-exec did not queue a reload')
    }
    if (halt === 'abandon' && !commands.some((c) => c.type === 'reloadAbandoned'))
      this.fail('an abandoned reload was not announced')
    this.followCommands(event, commands, after, before, halt)
    if (ctx.target < 1) this.fail(`target ${ctx.target}`)
    if (ctx.target !== this.target) this.fail(`target ${ctx.target}, the model says ${this.target}`)
    if (ctx.settings !== this.settings)
      this.fail(`settings ${JSON.stringify(ctx.settings)}, the model says ${JSON.stringify(this.settings)}`)
    for (const cmd of commands)
      if (cmd.type === 'spawnWorker' && cmd.generation === ctx.generation && cmd.settings !== ctx.settings)
        this.fail(`worker ${cmd.id} spawned without its generation's settings`)

    // Quick beats graceful, and nothing comes back from draining.
    const phase = phaseOf(after)
    if (RANK[phase] < RANK[this.phase]) this.fail(`${phase} after ${this.phase}`)
    this.phase = phase
    if (before && phaseOf(before) === 'active') {
      if ((event?.type === 'TERM' || event?.type === 'QUIT') && phase === 'active')
        this.fail(`${event.type} did not stop the master`)
      if (event?.type === 'INT' && phase !== 'quick' && phase !== 'dead')
        this.fail('INT did not stop the master quickly')
    }
    // A second stop signal makes the stop quick; QUIT while handing over to a
    // new master is the operator's finishing step and changes nothing.
    const secondStop =
      event?.type === 'INT' ||
      event?.type === 'TERM' ||
      (event?.type === 'QUIT' && before?.context.childMaster !== 'ready')
    if (secondStop && before && phaseOf(before) === 'graceful' && phase === 'graceful') {
      this.fail(`a second stop signal (${event.type}) did not make the stop quick`)
    }

    // Boot failures.
    if (halt === 'halt' && phase !== 'quick' && phase !== 'dead') this.fail('a boot failure did not halt the master')
    if (halt === 'abandon' && !after.matches({ active: 'running' })) this.fail('a failed reload was not abandoned')
    if (halt === 'abandon' && before?.context.reloadFromIdle && !after.matches({ active: { running: 'idle' } })) {
      this.fail('a reload started from idle (WINCH) and abandoned did not go back to idle')
    }
    // Back to the old generation: it serves (steady), or, with a HUP queued
    // meanwhile, is the old one of the next reload.
    if (halt === 'abandon' && before) {
      const old = after.matches({ active: { running: 'steady' } }) ? ctx.generation : ctx.previousGeneration
      if (old !== before.context.previousGeneration)
        this.fail('an abandoned reload did not go back to the old generation')
    }

    // Dead: no workers left, exit emitted once, with the expected code.
    if (phase === 'dead') {
      if (ctx.workers.length > 0) this.fail('dead with workers left')
      if (this.exits !== 1) this.fail(`dead after ${this.exits} exit commands`)
    } else if (this.exits > 0) this.fail('exit while not dead')

    // Generations: one live generation, two while a reload is in flight (the
    // new one next to the old one); never a third.
    const liveGens = new Set(ctx.workers.filter((w) => isLive(w.status)).map((w) => w.generation))
    if (after.matches({ active: { running: 'reloading' } })) {
      if (ctx.generation !== ctx.previousGeneration + 1)
        this.fail(`reloading generation ${ctx.generation} from ${ctx.previousGeneration}`)
      for (const g of liveGens)
        if (g !== ctx.generation && g !== ctx.previousGeneration)
          this.fail(`live workers of generation ${g} during a reload of ${ctx.generation}`)
    } else {
      for (const g of liveGens)
        if (g !== ctx.generation) this.fail(`live workers of generation ${g} beside the current ${ctx.generation}`)
    }

    // Nothing is spawned while stopping, or idle after WINCH.
    const resting = (x: Snapshot) => phaseOf(x) !== 'active' || x.matches({ active: { running: 'idle' } })
    if (before && resting(before) && resting(after) && commands.some((c) => c.type === 'spawnWorker'))
      this.fail('a worker spawned while stopping or idle')
    // Stopping means every worker was told to stop.
    if (phase === 'graceful' || phase === 'quick') {
      const live = ctx.workers.filter((w) => isLive(w.status))
      if (live.length > 0) this.fail(`draining with live workers ${live.map((w) => w.id).join(', ')}`)
    }
    // worker kill: a live worker of an active master is told to stop gracefully and leaves the live set;
    // any other (unknown, already stopping, the master draining) is left as it was.
    if (event?.type === 'KILL_WORKER' && before) {
      const was = before.context.workers.find((w) => w.id === event.id)
      const stops = commands.filter((c) => c.type === 'stopWorker' && c.id === event.id)
      if (phaseOf(before) === 'active' && was && isLive(was.status)) {
        if (stops.length !== 1 || (stops[0] as { mode: string }).mode !== 'graceful')
          this.fail(`worker kill ${event.id}: not one graceful stop`)
        if (ctx.workers.find((w) => w.id === event.id)?.status !== 'stopping')
          this.fail(`worker kill ${event.id}: still live`)
      } else if (phaseOf(before) === 'active' && stops.length > 0) this.fail(`worker kill ${event.id}: stopped again`)
    }
    // One new master at a time.
    if (before && before.context.childMaster !== 'none' && commands.some((c) => c.type === 'reexec'))
      this.fail('a second re-exec while a new master runs')
    // The preExec hook comes first: a new master only after it succeeded, none after it failed.
    if (commands.some((c) => c.type === 'preExec')) {
      if (this.preExecOwed) this.fail('a second preExec before the first was answered')
      this.preExecOwed = true
    }
    if (commands.some((c) => c.type === 'reexec') && event?.type !== 'PRE_EXEC_DONE')
      this.fail(`a new master started on ${event?.type ?? 'start'}, not on the preExec hook's success`)
    if (event?.type === 'PRE_EXEC_FAILED' && commands.some((c) => c.type === 'reexec' || c.type === 'restorePidfile'))
      this.fail('a failed preExec went on with the re-exec')
    if (
      event?.type === 'PRE_EXEC_FAILED' &&
      before?.matches({ active: { reexecing: 'preExec' } }) &&
      !after.matches({ active: 'running' })
    )
      this.fail('a failed preExec did not go back to serving')
    // The clock: past a TICK, no live worker is overdue and no stopping one is past its deadline.
    if (event?.type === 'TICK') {
      for (const w of ctx.workers) {
        if (isLive(w.status) && w.timeoutMs > 0 && ctx.now - w.lastBeat > w.timeoutMs)
          this.fail(`worker ${w.id} overdue and not aborted`)
        if (w.status === 'stopping' && ctx.now >= w.deadline)
          this.fail(`worker ${w.id} past its deadline and not killed`)
      }
    }
    if (ctx.respawnAt - ctx.now > MAX_BACKOFF_MS) this.fail(`back-off of ${ctx.respawnAt - ctx.now} ms`)

    // Convergence: running steadily with no back-off pending, the current
    // generation has exactly `target` live workers.
    if (this.convergence && after.matches({ active: { running: 'steady' } }) && this.now >= this.respawnAt) {
      const current = ctx.workers.filter((w) => w.generation === ctx.generation && isLive(w.status))
      const serving = current.filter((w) => w.role === 'serving')
      if (serving.length !== ctx.target)
        this.fail(
          `running steadily with ${serving.length} serving workers of generation ${ctx.generation}, target ${ctx.target}`,
        )
      // Every serving worker ready: the spares are all there, of this generation (a HUP replaced the old ones).
      const spares = current.length - serving.length
      const standby = ctx.settings.standby ?? 0
      if (serving.every((w) => w.status === 'running') && spares !== standby)
        this.fail(`running steadily with ${spares} spares, --standby ${standby}`)
    }
    // Spares never outnumber --standby, and a waiting spare never leaves a serving place empty.
    const currentSpares = ctx.workers.filter(
      (w) => w.generation === ctx.generation && w.role === 'spare' && isLive(w.status),
    )
    if (currentSpares.length > (ctx.settings.standby ?? 0))
      this.fail(`${currentSpares.length} spares, --standby ${ctx.settings.standby ?? 0}`)
    if (phase === 'active' && !after.matches({ active: { running: 'idle' } })) {
      const serving = ctx.workers.filter(
        (w) => w.generation === ctx.generation && w.role === 'serving' && isLive(w.status),
      ).length
      if (serving < ctx.target && currentSpares.some((w) => w.status === 'running'))
        this.fail(`a spare waits while ${ctx.target - serving} serving place(s) are empty`)
    }
  }

  /**
   * The invariants on commands and time, against the shadow: what the event
   * itself does to the workers, then each command in the order emitted (the
   * settings a stop's deadline is computed with are those in force when it
   * is sent), then what must have followed.
   */
  followCommands(
    event: MasterEvent | undefined,
    commands: readonly MasterCommand[],
    after: Snapshot,
    before: Snapshot | undefined,
    halt: 'halt' | 'abandon' | undefined,
  ): void {
    const gracefulMs = () => this.settings.gracefulTimeout * 1000
    const w = event && 'id' in event ? this.shadows.get(event.id) : undefined
    switch (event?.type) {
      case 'TICK':
        // The suspend guard: a gap longer than a worker's timeout restarts its heartbeat clock.
        for (const x of this.shadows.values())
          if (isLive(x.status) && x.timeoutMs > 0 && event.now - this.now > x.timeoutMs) x.lastBeat = event.now
        this.now = event.now
        break
      case 'HEARTBEAT':
        if (w) w.lastBeat = this.now
        break
      case 'WORKER_READY':
        if (w?.status === 'booting' && before && phaseOf(before) === 'active') {
          w.status = 'running'
          w.lastBeat = this.now
        }
        break
      case 'WORKER_RETIRING':
        if (w && isLive(w.status)) {
          w.status = 'stopping'
          w.deadline = this.now + gracefulMs()
        }
        break
      case 'WORKER_EXIT':
        if (!w) break
        this.shadows.delete(w.id)
        // Asked to go, put down, or refusing to boot (a halt, an abandon): not a crash.
        if (!isLive(w.status) || halt) break
        this.crashStreak = this.now - w.spawnedAt < MIN_UPTIME_MS ? this.crashStreak + 1 : 0
        this.respawnAt = this.now + backoffMs(this.crashStreak)
        break
    }
    const wasActive = before !== undefined && phaseOf(before) === 'active'
    const atOnce =
      before !== undefined &&
      (before.matches({ active: { running: 'steady' } }) || before.matches({ active: { running: 'idle' } }))
    if (event?.type === 'SETTINGS_READ' && wasActive && !atOnce) this.queued = true
    const liveBefore = [...this.shadows.values()].filter((x) => isLive(x.status))
    const stoppingBefore = [...this.shadows.values()].filter((x) => x.status === 'stopping')
    const generationBefore = before?.context.generation
    const targetBefore = this.target // TTOU's, before a reload the same event completes or starts changes it

    const stops = new Map<number, 'graceful' | 'quick'>()
    let reloads = 0
    for (const cmd of commands) {
      this.followReloads([cmd])
      if (cmd.type === 'reloadStarted' || cmd.type === 'reloadAbandoned') this.generation = cmd.generation
      if (cmd.type === 'reloadStarted') {
        reloads++
        if (!(event?.type === 'SETTINGS_READ' && atOnce) && !this.queued)
          this.fail('a reload started that no HUP asked for')
        this.queued = false
      }
      if (cmd.type === 'spawnWorker') {
        if (this.now < this.respawnAt)
          this.fail(`worker ${cmd.id} spawned at ${this.now}, during the back-off (until ${this.respawnAt})`)
        const serving = this.serving(cmd.generation)
        // The launch: no second worker before the first is ready (a failed first one is replaced, one at a time).
        const launching =
          before === undefined ||
          (before.matches({ active: 'booting' }) && cmd.generation === before.context.generation)
        if (cmd.role === 'serving' && launching && !serving.some((x) => x.status === 'running') && serving.length > 0)
          this.fail(`worker ${cmd.id} spawned during the launch before worker ${serving[0]!.id} was ready`)
        // Spares come behind a full set of ready serving workers, never beyond --standby.
        if (cmd.role === 'spare') {
          const ready = serving.filter((x) => x.status === 'running').length
          if (ready < this.target) this.fail(`spare ${cmd.id} spawned with ${ready} of ${this.target} serving ready`)
          if (this.spares(cmd.generation).length + 1 > (this.settings.standby ?? 0))
            this.fail(`spare ${cmd.id} spawned beyond --standby ${this.settings.standby ?? 0}`)
        }
        // A place a waiting spare could take is not given to a new process.
        if (cmd.role === 'serving' && this.spares(cmd.generation).some((x) => x.status === 'running'))
          this.fail(`worker ${cmd.id} spawned while a spare was waiting`)
        this.shadows.set(cmd.id, {
          id: cmd.id,
          generation: cmd.generation,
          role: cmd.role,
          status: 'booting',
          spawnedAt: this.now,
          lastBeat: this.now,
          timeoutMs: cmd.settings.timeout * 1000,
          deadline: Number.POSITIVE_INFINITY,
        })
      }
      if (cmd.type === 'promoteSpare') {
        const spare = this.shadows.get(cmd.id)
        if (spare?.role !== 'spare' || spare.status !== 'running' || spare.generation !== this.generation)
          this.fail(`promoteSpare ${cmd.id}: not a waiting spare of generation ${this.generation}`)
        if (this.serving(this.generation).length >= this.target)
          this.fail(`promoteSpare ${cmd.id} with every serving place taken`)
        // Booting again until it accepts; its serving life (and the crash streak's youth) starts now.
        spare.role = 'serving'
        spare.status = 'booting'
        spare.spawnedAt = this.now
        spare.lastBeat = this.now
        continue
      }
      if (cmd.type === 'ready') {
        const serving = this.serving(this.generation).filter((x) => x.status === 'running').length
        if (cmd.workers !== serving) this.fail(`ready with ${cmd.workers} workers, ${serving} serve`)
      }
      if (cmd.type !== 'stopWorker' && cmd.type !== 'killWorker' && cmd.type !== 'abortWorker') continue
      const target = this.shadows.get(cmd.id)
      if (!target) continue // an unknown id: the check above reports it
      if (cmd.type === 'stopWorker') {
        if (target.status === 'killed') this.fail(`stopWorker for worker ${cmd.id}, already killed`)
        const deadline = this.now + (cmd.mode === 'graceful' ? gracefulMs() : Math.min(gracefulMs(), QUICK_STOP_MS))
        target.deadline = target.status === 'stopping' ? Math.min(target.deadline, deadline) : deadline
        target.status = 'stopping'
        stops.set(cmd.id, cmd.mode)
        // The old generation stops only once the new one is all ready (an operator's
        // `worker kill` or `worker remove` stops workers of its own accord, at once).
        const byOperator = event?.type === 'KILL_WORKER' || event?.type === 'REMOVE_WORKERS'
        const retiring = target.generation !== this.generation && cmd.mode === 'graceful' && !byOperator
        if (retiring && phaseOf(after) === 'active' && !after.matches({ active: { running: 'idle' } })) {
          const ready = this.serving(this.generation).filter((x) => x.status === 'running').length
          if (ready < this.target)
            this.fail(`worker ${cmd.id} of an old generation retired with ${ready} of ${this.target} new ones ready`)
        }
      }
      if (cmd.type === 'killWorker') {
        if (target.status !== 'stopping' || this.now < target.deadline)
          this.fail(`SIGKILL for worker ${cmd.id} at ${this.now}, before its deadline ${target.deadline}`)
        target.status = 'killed'
      }
      if (cmd.type === 'abortWorker') {
        if (!isLive(target.status) || target.timeoutMs === 0 || this.now - target.lastBeat <= target.timeoutMs)
          this.fail(
            `worker ${cmd.id} aborted at ${this.now}, last beat ${target.lastBeat}, timeout ${target.timeoutMs}`,
          )
        target.status = 'killed'
      }
    }

    // The clock: at a TICK everything due is done, not a millisecond later.
    if (event?.type === 'TICK') {
      for (const x of this.shadows.values()) {
        if (x.status === 'stopping' && this.now >= x.deadline)
          this.fail(`worker ${x.id} not SIGKILLed at ${this.now}, its deadline ${x.deadline}`)
        if (isLive(x.status) && x.timeoutMs > 0 && this.now - x.lastBeat > x.timeoutMs)
          this.fail(`worker ${x.id} not aborted at ${this.now}: last beat ${x.lastBeat}, timeout ${x.timeoutMs}`)
      }
    }
    // A queued HUP makes exactly one reload, as soon as the master is steady.
    if (reloads > 1) this.fail(`${reloads} reloads started by one event`)
    if (phaseOf(after) !== 'active') this.queued = false
    if (this.queued && after.matches({ active: { running: 'steady' } })) this.fail('steady with a HUP still queued')

    // Stopping, for good or for WINCH: every live worker is told; a quick stop tells the stopping ones again.
    const phase = phaseOf(after)
    const enteredIdle =
      before !== undefined &&
      !before.matches({ active: { running: 'idle' } }) &&
      after.matches({ active: { running: 'idle' } })
    const toldAll = (victims: readonly Shadow[], mode?: 'quick') => {
      for (const x of victims)
        if (this.shadows.has(x.id) && (stops.get(x.id) === undefined || (mode && stops.get(x.id) !== mode)))
          this.fail(`worker ${x.id} was not sent its ${mode ?? ''} stop command`)
    }
    if ((wasActive && phase !== 'active') || enteredIdle) toldAll(liveBefore, phase === 'quick' ? 'quick' : undefined)
    if (before && phaseOf(before) !== 'quick' && phase === 'quick') toldAll([...liveBefore, ...stoppingBefore], 'quick')

    // A terminal's WINCH, or a signal while the master can do nothing with it, changes nothing.
    if (before && event?.type === 'WINCH' && event.fromTerminal) {
      if (commands.some((c) => c.type !== 'log')) this.fail("a terminal's WINCH emitted a command")
      if (!isDeepStrictEqual(before.value, after.value) || !isDeepStrictEqual(before.context, after.context))
        this.fail("a terminal's WINCH changed the master")
    }
    // A USR2 the shell knows cannot work (PID 1) is refused by the chart: no re-exec, no state change.
    if (before && event?.type === 'USR2' && event.refusal !== undefined) {
      if (commands.some((c) => c.type !== 'log')) this.fail('a refused USR2 (PID 1) emitted a command')
      if (!isDeepStrictEqual(before.value, after.value)) this.fail('a refused USR2 (PID 1) changed state')
    }
    if (event?.type === 'USR1' && !commands.some((c) => c.type === 'reopenLogs')) this.fail('USR1 did not reopen logs')
    // TTOU stops the oldest surplus workers of the current generation, in order.
    if (event?.type === 'TTOU' && wasActive && before && !before.matches({ active: { running: 'idle' } })) {
      const current = liveBefore
        .filter((x) => x.generation === generationBefore && x.role === 'serving')
        .sort((a, b) => a.id - b.id)
      const expected = current.slice(0, Math.max(0, current.length - targetBefore)).map((x) => x.id)
      // (The same event may complete a reload, which retires the old generation.)
      const stopped = [...stops.keys()].filter((id) => current.some((x) => x.id === id))
      if (!isDeepStrictEqual(stopped, expected))
        this.fail(`TTOU stopped ${JSON.stringify(stopped)}, the oldest surplus is ${JSON.stringify(expected)}`)
    }
  }

  /** Live serving workers of `generation`, by the model. */
  serving(generation: number): Shadow[] {
    return [...this.shadows.values()].filter(
      (x) => x.generation === generation && x.role === 'serving' && isLive(x.status),
    )
  }

  /** Live spares of `generation`, loading or waiting, by the model. */
  spares(generation: number): Shadow[] {
    return [...this.shadows.values()].filter(
      (x) => x.generation === generation && x.role === 'spare' && isLive(x.status),
    )
  }

  /** TERM, then the clock far ahead, then every worker exits: the way down from anywhere. */
  shutDown(): void {
    if (this.phase !== 'dead') this.send({ type: 'TERM' })
    if (this.phase !== 'dead') this.send({ type: 'TICK', now: this.snapshot.context.now + 1_000_000_000 })
    for (const w of [...this.snapshot.context.workers])
      if (this.phase !== 'dead') this.send({ type: 'WORKER_EXIT', id: w.id, code: 0, signal: null })
  }
}

/** Sends to a dead actor, quietly (XState warns about events to a stopped actor). */
function sendQuietly(actor: Master, events: readonly MasterEvent[]): void {
  const warn = console.warn
  console.warn = () => {}
  try {
    for (const e of events) actor.send(e)
  } finally {
    console.warn = warn
  }
}

// ---------------------------------------------------------------------------

describe('master machine: model-based', () => {
  test.prop([inputArb, intentsArb(sequenceLength(150))], replayParams(400))(
    'invariants hold after every event of any sequence',
    (input, intents) => {
      const sim = new Sim(input)
      for (const intent of intents) {
        if (sim.phase === 'dead') {
          // After dead nothing more is emitted, whatever arrives.
          const n = sim.emitted.length
          sendQuietly(sim.actor, sim.resolve(intent))
          expect(sim.emitted.length).toBe(n)
          continue
        }
        sim.run(intent)
      }
      depths.push(sim.log.length)
    },
  )

  test.prop([inputArb, intentsArb(sequenceLength(150))], replayParams(250))(
    'from any reachable state, TERM and every worker exiting ends in dead, exit 0 or the halt code',
    (input, intents) => {
      const sim = new Sim(input, { convergence: false })
      for (const intent of intents) if (sim.phase !== 'dead') sim.run(intent)
      depths.push(sim.log.length)
      sim.shutDown()
      expect(sim.snapshot.status).toBe('done')
      expect(sim.snapshot.context.workers).toEqual([])
      const exit = sim.emitted.filter((c) => c.type === 'exit')
      expect(exit).toEqual([{ type: 'exit', code: sim.exitCode }])
      expect([0, 3, 4]).toContain(sim.exitCode)
    },
  )

  // Over the runs above (a replayed counterexample is one run: nothing to count).
  it.skipIf(replaying)('the runs take every transition of the chart and every guard', () => {
    console.log(`master model: events per run before the end, ${distribution(depths)}`)
    console.log(coverage.report('master model'))
    console.log(
      `deep paths taken:\n${[...deepPaths].map(([name, n]) => `${String(n).padStart(8)}  ${name}`).join('\n')}`,
    )
    expect(coverage.missing()).toEqual([])
    expect([...deepPaths].filter(([, n]) => n === 0).map(([name]) => `${name} never taken`)).toEqual([])
  })
})
