// The model of the master statechart that test/master-model.test.ts runs
// beside a real actor: the events an intent of the shell becomes in the
// actor's state, and after each event the invariants of spec/lifecycle.md,
// checked against the model's own view of the workers, the clock and the
// settings (never the machine's arithmetic). The test file holds the
// generators and the properties; this file what must hold.
import { isDeepStrictEqual } from 'node:util'
import { createActor, type Actor } from 'xstate'
import { MAX_BACKOFF_MS } from '../../machines/master-workers.ts'
import {
  type masterMachine,
  SIGNALS,
  type MasterCommand,
  type MasterEvent,
  type MasterInput,
  type MasterSettings,
  type Signal,
} from '../../machines/master.ts'
import type { Coverage } from './coverage.ts'

type Master = Actor<typeof masterMachine>
type Snapshot = ReturnType<Master['getSnapshot']>

/** Where every run's actor records what it took: the chart's transitions and guards, and the deep paths. */
export interface Recording {
  readonly coverage: Coverage<typeof masterMachine>
  tookPath(name: string): void
}

const isSignal = (type: string): boolean => (SIGNALS as readonly string[]).includes(type)

// ---------------------------------------------------------------------------
// What the shell may do next, before it is bound to the actor's state: which
// worker a report concerns is picked among those the master knows when the
// step runs (or an id it does not know).

export type WorkerPick = { readonly index: number; readonly unknown: boolean }

export type Intent =
  | { readonly kind: 'signal'; readonly signal: Exclude<Signal, 'HUP' | 'WINCH'> }
  | { readonly kind: 'winch'; readonly fromTerminal: boolean }
  /** USR2 as the shell sends it when it is PID 1. */
  | { readonly kind: 'usr2Refused' }
  | { readonly kind: 'hup' }
  /** The shell's answer to a `readSettings`: the settings it re-read, or none (no config); sent only when one is owed. */
  | { readonly kind: 'settingsRead'; readonly settings: MasterSettings | undefined }
  /** The shell's answer to a `readSettings` when the sources are invalid or name a missing file: no reload. */
  | { readonly kind: 'settingsRefused' }
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

/** One event's step as the checks see it: the event (none at the start), what it emitted, the snapshots around it. */
interface Observed {
  readonly event: MasterEvent | undefined
  readonly commands: readonly MasterCommand[]
  readonly after: Snapshot
  readonly before: Snapshot | undefined
  readonly halt: 'halt' | 'abandon' | undefined
}

/** The shadow workers after what the event itself did, before its commands. */
interface EarlierWorkers {
  readonly wasActive: boolean
  readonly live: readonly Shadow[]
  readonly stopping: readonly Shadow[]
  readonly generation: number | undefined
  readonly target: number
}

/** The stop commands one event sent, by worker id. */
type Stops = Map<number, 'graceful' | 'quick'>

export class Sim {
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

  readonly recording: Recording

  constructor(input: MasterInput, recording: Recording, { convergence = true } = {}) {
    this.convergence = convergence
    this.recording = recording
    const { coverage } = recording
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
      case 'settingsRefused':
        if (this.settingsOwed === 0) return []
        this.settingsOwed--
        return [{ type: 'SETTINGS_READ', refused: ['--certfile: no such file'] }]
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
      this.recording.tookPath('the back-off reaches its 10 s cap')
    if (commands.some((c) => c.type === 'abortWorker')) this.recording.tookPath('a heartbeat abort')
    if (
      (event.type === 'TERM' || event.type === 'INT' || event.type === 'QUIT') &&
      active &&
      before.context.settingsReads > 0
    )
      this.recording.tookPath("a stop signal during a HUP's settings read")
    if (event.type === 'SETTINGS_READ' && !active)
      this.recording.tookPath('settings read after the master began to stop')
    if (
      event.type === 'SETTINGS_READ' &&
      event.refused !== undefined &&
      before.matches({ active: { running: 'reloading' } })
    )
      this.recording.tookPath('settings refused during a reload in flight')
    if (event.type === 'REEXEC_EXIT' && child === 'ready' && phaseOf(after) === 'active') this.rolledBack = true
    if (this.rolledBack && child === 'starting' && (event.type === 'REEXEC_FAILED' || event.type === 'REEXEC_EXIT'))
      this.recording.tookPath('a new master fails to start after a rollback')
    if (isSignal(event.type) && child === 'ready') this.recording.tookPath('a signal during a hand-over')
    if (commands.some((c) => c.type === 'promoteSpare')) this.recording.tookPath('a spare takes over')
    if (
      (after.context.settings.standby ?? 0) > 0 &&
      commands.some((c) => c.type === 'spawnWorker' && c.role === 'serving') &&
      after.context.crashStreak > 1
    )
      this.recording.tookPath('a crash storm outlasts the spares')
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

  /** After an event (none: the start): every invariant, in order; the model follows the commands on the way. */
  check(
    event: MasterEvent | undefined,
    from: number,
    after: Snapshot,
    before?: Snapshot,
    halt?: 'halt' | 'abandon',
  ): void {
    const step: Observed = { event, commands: this.emitted.slice(from), after, before, halt }
    this.checkCommands(step)
    this.checkSettingsReads(step)
    this.checkReloadRequests(step)
    this.followCommands(step)
    this.checkTargetAndSettings(step)
    this.checkStopOrder(step)
    this.checkBootFailures(step)
    this.checkDeath(step)
    this.checkGenerations(step)
    this.checkResting(step)
    this.checkWorkerKill(step)
    this.checkReexec(step)
    this.checkClock(step)
    this.checkConvergence(step)
  }

  /** Commands: fresh spawns, ids the master knows, nothing after exit. */
  checkCommands(step: Observed): void {
    const { commands, before } = step
    const known = new Set([...(before?.context.workers ?? []), ...step.after.context.workers].map((w) => w.id))
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
  }

  /** A HUP asks for the settings, once; settings that come back while stopping change nothing. */
  checkSettingsReads(step: Observed): void {
    const { event, commands, before, after } = step
    const ctx = after.context
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
  }

  /** Settings read start a reload at once or queue one; an abandoned reload is announced. */
  checkReloadRequests(step: Observed): void {
    const { event, commands, before, halt } = step
    const ctx = step.after.context
    // The target and the settings. Settings read for a HUP in steady or idle
    // reload at once; anywhere else in active the reload is queued. An
    // abandoned reload goes back to the size and settings the old generation served with.
    const started = commands.some((c) => c.type === 'reloadStarted')
    // Refused settings start and queue nothing: the chart says why, and carries on as it was.
    if (event?.type === 'SETTINGS_READ' && event.refused !== undefined && before && phaseOf(before) === 'active') {
      const refusals = commands.filter((c) => c.type === 'reloadRefused')
      if (refusals.length !== 1 || refusals[0]?.problems !== event.refused)
        this.fail(`refused settings announced ${refusals.length} time(s)`)
      if (commands.some((c) => c.type !== 'reloadRefused' && c.type !== 'log'))
        this.fail('refused settings did more than say so')
      if (!isDeepStrictEqual(before.value, step.after.value) || before.context.reloadQueued !== ctx.reloadQueued)
        this.fail('refused settings changed state or queued a reload')
    } else if (event?.type === 'SETTINGS_READ' && before) {
      const atOnce =
        before.matches({ active: { running: 'steady' } }) || before.matches({ active: { running: 'idle' } })
      if (atOnce && !started) this.fail('settings read in steady or idle did not start a reload')
      if (!atOnce && phaseOf(before) === 'active' && !ctx.reloadQueued && !started)
        this.fail('settings read during a boot, reload or re-exec did not queue a reload')
    }
    if (halt === 'abandon' && !commands.some((c) => c.type === 'reloadAbandoned'))
      this.fail('an abandoned reload was not announced')
  }

  /** The target and the settings are the model's, and new workers get their generation's settings. */
  checkTargetAndSettings(step: Observed): void {
    const { commands } = step
    const ctx = step.after.context
    if (ctx.target < 1) this.fail(`target ${ctx.target}`)
    if (ctx.target !== this.target) this.fail(`target ${ctx.target}, the model says ${this.target}`)
    if (ctx.settings !== this.settings)
      this.fail(`settings ${JSON.stringify(ctx.settings)}, the model says ${JSON.stringify(this.settings)}`)
    for (const cmd of commands)
      if (cmd.type === 'spawnWorker' && cmd.generation === ctx.generation && cmd.settings !== ctx.settings)
        this.fail(`worker ${cmd.id} spawned without its generation's settings`)
  }

  /** Stopping only goes forward: graceful, quick, dead; each stop signal does its part. */
  checkStopOrder(step: Observed): void {
    const { event, before, after } = step
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
  }

  /** A boot failure halts the master or abandons the reload, back to the old generation. */
  checkBootFailures(step: Observed): void {
    const { before, after, halt } = step
    const ctx = after.context
    const phase = phaseOf(after)
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
  }

  /** Dead: no workers left, one exit; not dead: no exit. */
  checkDeath(step: Observed): void {
    const { after } = step
    const ctx = after.context
    const phase = phaseOf(after)
    // Dead: no workers left, exit emitted once, with the expected code.
    if (phase === 'dead') {
      if (ctx.workers.length > 0) this.fail('dead with workers left')
      if (this.exits !== 1) this.fail(`dead after ${this.exits} exit commands`)
    } else if (this.exits > 0) this.fail('exit while not dead')
  }

  /** One live generation, two during a reload, never a third. */
  checkGenerations(step: Observed): void {
    const { after } = step
    const ctx = after.context
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
  }

  /** Nothing spawned while stopping or idle; draining, no worker is live. */
  checkResting(step: Observed): void {
    const { commands, before, after } = step
    const ctx = after.context
    const phase = phaseOf(after)
    // Nothing is spawned while stopping, or idle after WINCH.
    const resting = (x: Snapshot) => phaseOf(x) !== 'active' || x.matches({ active: { running: 'idle' } })
    if (before && resting(before) && resting(after) && commands.some((c) => c.type === 'spawnWorker'))
      this.fail('a worker spawned while stopping or idle')
    // Stopping means every worker was told to stop.
    if (phase === 'graceful' || phase === 'quick') {
      const live = ctx.workers.filter((w) => isLive(w.status))
      if (live.length > 0) this.fail(`draining with live workers ${live.map((w) => w.id).join(', ')}`)
    }
  }

  /** `worker kill`: one graceful stop for a live worker of an active master, nothing otherwise. */
  checkWorkerKill(step: Observed): void {
    const { event, commands, before } = step
    const ctx = step.after.context
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
  }

  /** One new master at a time, and only after the preExec hook succeeded. */
  checkReexec(step: Observed): void {
    const { event, commands, before, after } = step
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
  }

  /** Past a TICK nothing is overdue; the back-off never passes its cap. */
  checkClock(step: Observed): void {
    const { event } = step
    const ctx = step.after.context
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
  }

  /** Running steadily with no back-off pending, the current generation has `target` live workers. */
  checkConvergence(step: Observed): void {
    const { after } = step
    const ctx = after.context
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
    if (phaseOf(after) === 'active' && !after.matches({ active: { running: 'idle' } })) {
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
  followCommands(step: Observed): void {
    this.followEvent(step)
    const { event, before } = step
    const wasActive = before !== undefined && phaseOf(before) === 'active'
    const atOnce =
      before !== undefined &&
      (before.matches({ active: { running: 'steady' } }) || before.matches({ active: { running: 'idle' } }))
    if (event?.type === 'SETTINGS_READ' && event.refused === undefined && wasActive && !atOnce) this.queued = true
    const earlier: EarlierWorkers = {
      wasActive,
      live: [...this.shadows.values()].filter((x) => isLive(x.status)),
      stopping: [...this.shadows.values()].filter((x) => x.status === 'stopping'),
      generation: before?.context.generation,
      target: this.target, // TTOU's, before a reload the same event completes or starts changes it
    }
    const { stops, reloads } = this.followEachCommand(step, atOnce)
    this.checkDueDone(step)
    this.checkQueuedReload(step, reloads)
    this.checkStopsTold(step, stops, earlier)
    this.checkIgnored(step)
    this.checkTtou(step, stops, earlier)
  }

  /** What the event itself does to the shadow workers and the clock. */
  followEvent(step: Observed): void {
    const { event, before, halt } = step
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
  }

  /** Each command in the order emitted: the shadow follows, and each is checked against it. */
  followEachCommand(step: Observed, atOnce: boolean): { stops: Stops; reloads: number } {
    const { event, commands, before, after } = step
    const gracefulMs = () => this.settings.gracefulTimeout * 1000
    const stops: Stops = new Map()
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
    return { stops, reloads }
  }

  /** At a TICK everything due is done, not a millisecond later. */
  checkDueDone(step: Observed): void {
    const { event } = step
    // The clock: at a TICK everything due is done, not a millisecond later.
    if (event?.type === 'TICK') {
      for (const x of this.shadows.values()) {
        if (x.status === 'stopping' && this.now >= x.deadline)
          this.fail(`worker ${x.id} not SIGKILLed at ${this.now}, its deadline ${x.deadline}`)
        if (isLive(x.status) && x.timeoutMs > 0 && this.now - x.lastBeat > x.timeoutMs)
          this.fail(`worker ${x.id} not aborted at ${this.now}: last beat ${x.lastBeat}, timeout ${x.timeoutMs}`)
      }
    }
  }

  /** A queued HUP makes exactly one reload, as soon as the master is steady. */
  checkQueuedReload(step: Observed, reloads: number): void {
    const { after } = step
    // A queued HUP makes exactly one reload, as soon as the master is steady.
    if (reloads > 1) this.fail(`${reloads} reloads started by one event`)
    if (phaseOf(after) !== 'active') this.queued = false
    if (this.queued && after.matches({ active: { running: 'steady' } })) this.fail('steady with a HUP still queued')
  }

  /** Stopping, for good or for WINCH: every live worker is told; a quick stop tells the stopping ones again. */
  checkStopsTold(step: Observed, stops: Stops, earlier: EarlierWorkers): void {
    const { before, after } = step
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
    if ((earlier.wasActive && phase !== 'active') || enteredIdle)
      toldAll(earlier.live, phase === 'quick' ? 'quick' : undefined)
    if (before && phaseOf(before) !== 'quick' && phase === 'quick')
      toldAll([...earlier.live, ...earlier.stopping], 'quick')
  }

  /** A terminal's WINCH and a refused USR2 change nothing; USR1 reopens the logs. */
  checkIgnored(step: Observed): void {
    const { event, commands, before, after } = step
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
  }

  /** TTOU stops the oldest surplus workers of the current generation, in order. */
  checkTtou(step: Observed, stops: Stops, earlier: EarlierWorkers): void {
    const { event, before } = step
    // TTOU stops the oldest surplus workers of the current generation, in order.
    if (event?.type === 'TTOU' && earlier.wasActive && before && !before.matches({ active: { running: 'idle' } })) {
      const current = earlier.live
        .filter((x) => x.generation === earlier.generation && x.role === 'serving')
        .sort((a, b) => a.id - b.id)
      const expected = current.slice(0, Math.max(0, current.length - earlier.target)).map((x) => x.id)
      // (The same event may complete a reload, which retires the old generation.)
      const stopped = [...stops.keys()].filter((id) => current.some((x) => x.id === id))
      if (!isDeepStrictEqual(stopped, expected))
        this.fail(`TTOU stopped ${JSON.stringify(stopped)}, the oldest surplus is ${JSON.stringify(expected)}`)
    }
  }

  /** TERM, then the clock far ahead, then every worker exits: the way down from anywhere. */
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

  shutDown(): void {
    if (this.phase !== 'dead') this.send({ type: 'TERM' })
    if (this.phase !== 'dead') this.send({ type: 'TICK', now: this.snapshot.context.now + 1_000_000_000 })
    for (const w of [...this.snapshot.context.workers])
      if (this.phase !== 'dead') this.send({ type: 'WORKER_EXIT', id: w.id, code: 0, signal: null })
  }
}

/** Sends to a dead actor, quietly (XState warns about events to a stopped actor). */
export function sendQuietly(actor: Master, events: readonly MasterEvent[]): void {
  const warn = console.warn
  console.warn = () => {}
  try {
    for (const e of events) actor.send(e)
  } finally {
    console.warn = warn
  }
}
