// What a real corral master should look like after each step of a
// conformance run (test/conformance.test.ts, spec/model-fidelity.md), told by
// the pure master machine alone. The predictor runs the real chart
// (machines/master.ts) in an idealised world: every command the chart emits
// has its ideal effect at once, as the event the shell would then send
// (src/master/main.ts, src/master/worker-pool.ts, src/master/reexec.ts): a
// spawned worker reports ready, or exits with APP_LOAD_ERROR when the app on
// disk is broken; a stopped one exits 0; a killed one dies on SIGKILL; a new
// master started by USR2 gets ready, or exits 4 when its app cannot load.
// The clock moves only as far as a back-off needs, workers beating on time.
// It knows nothing of the real master: only the steps, and the scenario the
// real one was started with.
import { createActor, type Actor } from 'xstate'
import { APP_LOAD_ERROR } from '../../machines/exit-codes.ts'
import { workerState } from '../../machines/master-workers.ts'
import { masterMachine, type MasterCommand, type MasterEvent, type MasterSettings } from '../../machines/master.ts'
import { stateName } from '../../src/master/status.ts'

/** How the real master is started: `-w workers --standby N --upgrade upgrade`, the default timeouts. */
export interface Scenario {
  readonly settings: MasterSettings
  readonly upgrade: 'manual' | 'auto'
}

/**
 * A step as both sides apply it. Which worker a `kill9` or `workerKill`
 * concerns is resolved by the predictor into `id` (the chart's worker id,
 * which the real side finds in `show workers`).
 */
export type Step =
  /** A signal to the master's pid. WINCH: the real master has no terminal (startCorral detaches it), so it acts. */
  | { readonly kind: 'signal'; readonly signal: 'TTIN' | 'TTOU' | 'HUP' | 'USR2' | 'WINCH' }
  /** `corral ctl worker add N` / `worker remove N` / `reload`, through the control socket. */
  | { readonly kind: 'workerAdd'; readonly count: number }
  | { readonly kind: 'workerRemove'; readonly count: number }
  | { readonly kind: 'reload' }
  /** `corral ctl worker kill PID` of the worker with this id. */
  | { readonly kind: 'workerKill'; readonly id: number }
  /** `kill -9` of the worker with this id. */
  | { readonly kind: 'kill9'; readonly id: number }
  /** The app file replaced by one that throws at import, and put back. No event: the next spawns see it. */
  | { readonly kind: 'breakApp' }
  | { readonly kind: 'fixApp' }
  /** The config file made invalid, and put back. No event: the next HUP's read refuses the settings. */
  | { readonly kind: 'breakConfig' }
  | { readonly kind: 'fixConfig' }
  /** QUIT to the new master a USR2 started (the manual rollback, spec/upgrade.md). */
  | { readonly kind: 'quitNewMaster' }
  /** The last step: a stop signal to the master. */
  | { readonly kind: 'stop'; readonly signal: 'QUIT' | 'TERM' | 'INT' }

/**
 * Who a pidfile or a control socket path belongs to: the master under test,
 * the new master of a USR2, nobody. The real side may see worse, which the
 * predictor never says: another pid, or a socket file nobody answers on.
 */
export type Owner = 'old' | 'new' | 'none' | 'stale' | `pid ${string}`

/**
 * What is compared after each step: only what does not depend on real
 * timing. Left out: crashStreak (whether a killed worker was "young" depends
 * on how long the real one took), ages, heartbeat ages, pids, request counts.
 */
export type Observed =
  | {
      readonly state: string
      readonly target: number
      readonly generation: number
      /** Every worker the chart knows, by id: its generation and state as `show workers` says it (`standby`: a waiting spare). */
      readonly workers: readonly { readonly id: number; readonly generation: number; readonly state: string }[]
      readonly reloadQueued: boolean
      readonly childMaster: string
      readonly files: Files
    }
  | { readonly state: 'dead'; readonly exitCode: number; readonly files: Files }

/** PIDFILE, PIDFILE.2 and the control socket's PATH and PATH.2: whose each is. */
export interface Files {
  readonly pidfile: Owner
  readonly pidfileAside: Owner
  readonly socket: Owner
  readonly socketAside: Owner
}

/**
 * Settled: nothing more happens without a new input. Running steadily with
 * exactly the target of the current generation, all running, and `standby`
 * spares of it waiting (or idle after WINCH with no worker left), no reload
 * queued, no new master still booting; or gone. The same test decides for the
 * predictor and the real master.
 */
export function isSettled(o: Observed, standby = 0): boolean {
  if (o.state === 'dead') return true
  if (!('workers' in o) || o.reloadQueued || o.childMaster === 'starting') return false
  const current = o.workers.every(
    (w) => (w.state === 'running' || w.state === 'standby') && w.generation === o.generation,
  )
  const count = (state: string) => o.workers.filter((w) => w.state === state).length
  if (o.state === 'active.running.steady')
    return current && count('running') === o.target && count('standby') === standby
  return o.state === 'active.running.idle' && o.workers.length === 0
}

/** Loops of the idealised world before a step is said never to settle (a crash loop). */
const MAX_ROUNDS = 500

export class MasterPredictor {
  private readonly actor: Actor<typeof masterMachine>
  private readonly pending: MasterEvent[] = []
  /** Workers whose exit is already on its way: a process exits once. */
  private readonly exiting = new Set<number>()
  private appBroken = false
  private configBroken = false
  /** The new master of a USR2, as a process: it serves as soon as it is started (the app good), or is not there. */
  private newMaster: 'none' | 'serving' = 'none'
  private files: { -readonly [K in keyof Files]: Files[K] } = {
    pidfile: 'none',
    pidfileAside: 'none',
    socket: 'old',
    socketAside: 'none',
  }
  /** Which of its two paths the master under test last wrote its pidfile and socket at. */
  private aside = false
  private exitCode: number | undefined
  /** What the chart did that a run's figures count: reloads started and abandoned, re-execs, exit codes. */
  readonly outcomes: Record<string, number> = {}
  readonly settled: boolean
  readonly scenario: Scenario

  constructor(scenario: Scenario) {
    this.scenario = scenario
    this.actor = createActor(masterMachine, {
      input: { settings: scenario.settings, upgrade: scenario.upgrade, now: 0 },
    })
    this.actor.on('*', (command) => this.carryOut(command as MasterCommand))
    this.actor.start()
    this.settled = this.settle()
  }

  /** A predictor that has applied `steps` from the start. */
  static after(scenario: Scenario, steps: readonly Step[]): MasterPredictor {
    const p = new MasterPredictor(scenario)
    for (const step of steps) p.apply(step)
    return p
  }

  get dead(): boolean {
    return this.exitCode !== undefined
  }

  get broken(): boolean {
    return this.appBroken
  }

  get brokenConfig(): boolean {
    return this.configBroken
  }

  get newMasterServing(): boolean {
    return this.newMaster === 'serving'
  }

  /** The ids of the workers the chart knows, in order. */
  workerIds(): number[] {
    return this.actor
      .getSnapshot()
      .context.workers.map((w) => w.id)
      .sort((a, b) => a - b)
  }

  /** Applies a step and lets the world settle; false if it never does (the step should not have been taken). */
  apply(step: Step): boolean {
    switch (step.kind) {
      case 'signal':
        this.send(step.signal === 'WINCH' ? { type: 'WINCH', fromTerminal: false } : { type: step.signal })
        break
      case 'workerAdd':
        for (let i = 0; i < step.count; i++) this.send({ type: 'TTIN' })
        break
      case 'workerRemove':
        this.send({ type: 'REMOVE_WORKERS', count: step.count })
        break
      case 'reload':
        this.send({ type: 'HUP' })
        break
      case 'workerKill':
        this.send({ type: 'KILL_WORKER', id: step.id })
        break
      case 'kill9':
        this.exit(step.id, null, 'SIGKILL')
        break
      case 'breakApp':
        this.appBroken = true
        break
      case 'fixApp':
        this.appBroken = false
        break
      case 'breakConfig':
        this.configBroken = true
        break
      case 'fixConfig':
        this.configBroken = false
        break
      case 'quitNewMaster':
        // It stops, removes its pidfile and its socket, and exits 0: its parent hears it exit.
        this.newMaster = 'none'
        if (this.files.pidfile === 'new') this.files.pidfile = 'none'
        if (this.files.socket === 'new') this.files.socket = 'none'
        this.pending.push({ type: 'REEXEC_EXIT', code: 0, signal: null })
        break
      case 'stop':
        this.send({ type: step.signal })
        break
    }
    return this.settle()
  }

  observe(): Observed {
    const files = { ...this.files }
    if (this.exitCode !== undefined) return { state: 'dead', exitCode: this.exitCode, files }
    const { value, context } = this.actor.getSnapshot()
    return {
      state: stateName(value),
      target: context.target,
      generation: context.generation,
      workers: [...context.workers]
        .sort((a, b) => a.id - b.id)
        .map((w) => ({ id: w.id, generation: w.generation, state: workerState(w) })),
      reloadQueued: context.reloadQueued,
      childMaster: context.childMaster,
      files,
    }
  }

  private send(event: MasterEvent): void {
    this.actor.send(event)
  }

  private exit(id: number, code: number | null, signal: string | null): void {
    if (this.exiting.has(id)) return
    this.exiting.add(id)
    this.pending.push({ type: 'WORKER_EXIT', id, code, signal })
  }

  /** The ideal effect of a command: the event the shell would send back, queued (the chart is mid-transition). */
  private carryOut(command: MasterCommand): void {
    if (command.type === 'exit') this.count(`exit ${command.code}`)
    if (command.type === 'reloadStarted' || command.type === 'reloadAbandoned' || command.type === 'reloadRefused')
      this.count(command.type)
    switch (command.type) {
      case 'spawnWorker':
        // src/worker/main.ts: an app that throws at import is BOOT_FAILED with APP_LOAD_ERROR.
        if (this.appBroken) this.exit(command.id, APP_LOAD_ERROR, null)
        else this.pending.push({ type: 'WORKER_READY', id: command.id })
        return
      case 'promoteSpare':
        // src/worker/main.ts: the spare takes up the listeners and reports ready again.
        this.pending.push({ type: 'WORKER_READY', id: command.id })
        return
      case 'stopWorker':
        return this.exit(command.id, 0, null)
      case 'killWorker':
      case 'abortWorker':
        return this.exit(command.id, null, 'SIGKILL')
      case 'ready':
        // src/master/main.ts: the pidfile is written once the first workers serve.
        this.files.pidfile = 'old'
        this.aside = false
        return
      case 'readSettings':
        // src/master/main.ts, src/config/reload.ts: the settings re-read are the command line's again,
        // or refused while the config file is invalid.
        this.pending.push(
          this.configBroken
            ? { type: 'SETTINGS_READ', refused: ['corral.config.mjs: unknown setting "wrokers"'] }
            : { type: 'SETTINGS_READ', settings: this.scenario.settings },
        )
        return
      case 'preExec':
        // src/master/main.ts: no preExec hook in these runs, so the shell answers at once.
        this.pending.push({ type: 'PRE_EXEC_DONE' })
        return
      case 'reexec':
        // src/master/pidfile.ts, control-socket.ts: moved aside only if still at PATH and ours.
        if (!this.aside && this.files.pidfile === 'old') {
          this.files.pidfile = 'none'
          this.files.pidfileAside = 'old'
        }
        if (!this.aside && this.files.socket === 'old') {
          this.files.socket = 'none'
          this.files.socketAside = 'old'
        }
        this.aside = true
        // The new master re-reads the app: broken, its first worker exits 4 and it halts with 4
        // (having opened PATH and removed it again); else it writes PIDFILE, then says it is ready.
        this.count(this.appBroken ? 'new master failed' : 'new master ready')
        if (this.appBroken) {
          this.pending.push({ type: 'REEXEC_EXIT', code: APP_LOAD_ERROR, signal: null })
        } else {
          this.newMaster = 'serving'
          this.files.pidfile = 'new'
          this.files.socket = 'new'
          this.pending.push({ type: 'REEXEC_READY' })
        }
        return
      case 'restorePidfile':
        if (this.aside && this.files.pidfileAside === 'old') {
          this.files.pidfile = 'old'
          this.files.pidfileAside = 'none'
        }
        if (this.aside && this.files.socketAside === 'old') {
          this.files.socket = 'old'
          this.files.socketAside = 'none'
        }
        this.aside = false
        return
      case 'exit':
        // Each of its files goes, wherever it is, if it is still its own.
        for (const key of ['pidfile', 'pidfileAside', 'socket', 'socketAside'] as const)
          if (this.files[key] === 'old') this.files[key] = 'none'
        this.exitCode = command.code
        return
      default:
        return
    }
  }

  private count(outcome: string): void {
    this.outcomes[outcome] = (this.outcomes[outcome] ?? 0) + 1
  }

  /** Runs the idealised world until nothing more happens; false if it never stops (a crash loop). */
  private settle(): boolean {
    for (let round = 0; round < MAX_ROUNDS; round++) {
      const next = this.pending.shift()
      if (next) {
        if (!this.dead) this.send(next)
        continue
      }
      if (isSettled(this.observe(), this.scenario.settings.standby)) return true
      // Time passes: every live worker has beaten; the clock goes to the end of the back-off, or a little on.
      const { context } = this.actor.getSnapshot()
      for (const w of context.workers)
        if (w.status === 'booting' || w.status === 'running') this.send({ type: 'HEARTBEAT', id: w.id })
      this.send({ type: 'TICK', now: Math.max(context.now + 100, context.respawnAt) })
    }
    return false
  }
}
