// The master's bookkeeping of its workers, as pure functions from context to
// (new context, commands). The statechart in master.ts decides *when* each
// runs; these decide *what* follows. Keeping them apart lets a test check the
// arithmetic (how many to spawn, which to stop, when to kill) without a chart.
import { APP_LOAD_ERROR, BOOT_ERROR, OK } from './exit-codes.ts'
import type { RetireCause } from './worker.ts'

type WorkerStatus =
  | 'booting' // spawned, app not loaded yet
  | 'running' // told the master it is ready
  | 'stopping' // sent TERM/QUIT/INT, expected to exit by `deadline`
  | 'killed' // SIGKILL sent or pending (heartbeat abort, missed deadline)

/**
 * Why a worker left, decided here once and carried by `workerExited`: the
 * log, `corral ctl`, the restart metrics and the hooks read it from there.
 * `crash`: it exited with nobody asking; `boot-failure`: it exited 3 or 4
 * while booting; `timeout`: aborted for a missed heartbeat; `max-requests`,
 * `max-memory`, `retired`: it left by itself (RetireCause); `killed`:
 * `corral ctl worker kill`; `scaled-down`: TTOU or `worker remove`;
 * `reload`: its generation was replaced by a completed reload;
 * `abandoned-reload`: its generation could not boot; `stop`: the master is
 * stopping, or stopped its workers on WINCH.
 */
export type ExitCause =
  | 'crash'
  | 'boot-failure'
  | 'timeout'
  | RetireCause
  | 'killed'
  | 'scaled-down'
  | 'reload'
  | 'abandoned-reload'
  | 'stop'

/**
 * `serving`: one of the `target` workers that accept connections. `spare`: a
 * standby worker (--standby): it loads the app and waits, not accepting,
 * until converge promotes it into a serving worker's empty place.
 */
export type WorkerRole = 'serving' | 'spare'

interface WorkerRecord {
  readonly id: number
  readonly generation: number
  readonly role: WorkerRole
  /** A spare's `running` means loaded and waiting; a promoted spare is `booting` again until it accepts. */
  readonly status: WorkerStatus
  readonly spawnedAt: number
  readonly lastBeat: number
  /** The heartbeat timeout it was started with: a HUP may change it for later workers only. */
  readonly timeoutMs: number
  /** When a stopping worker is SIGKILLed if it is still alive. */
  readonly deadline: number
  /** Why it was told to go (the first reason stands), once it was. */
  readonly leaving?: ExitCause
}

export type StopMode = 'graceful' | 'quick'

/**
 * What the chart reads of the settings: four of them, by their setting names
 * (the timeouts in seconds). The shell hands in its whole settings object (input, HUP) and the
 * chart passes it on untouched to the commands that need it (`spawnWorker`,
 * `reloadStarted`, `reloadAbandoned`): the settings a worker is started with
 * are those of its generation, and there is one path for them. Hence the type
 * parameter `S` on the types below; the chart itself is typed with this slice.
 */
export interface MasterSettings {
  readonly workers: number
  readonly timeout: number
  readonly gracefulTimeout: number
  /** --standby: spares of the current generation kept loaded (absent: none). */
  readonly standby?: number | undefined
}

export type MasterCommand<S extends MasterSettings = MasterSettings> =
  | { type: 'spawnWorker'; id: number; generation: number; role: WorkerRole; settings: S }
  /** A ready spare takes a serving worker's place: it starts accepting (and says ready again once it does). */
  | { type: 'promoteSpare'; id: number }
  | { type: 'stopWorker'; id: number; mode: StopMode }
  | { type: 'killWorker'; id: number }
  | { type: 'abortWorker'; id: number }
  /** A worker the chart knew is gone (the shell's childExit hook): its exit as reported, with its generation. */
  | {
      type: 'workerExited'
      id: number
      pid: number | undefined
      generation: number
      code: number | null
      signal: string | null
      cause: ExitCause
    }
  /** The target number of workers changed (TTIN, TTOU, a reload's settings, an abandoned reload). */
  | { type: 'workersChanged'; workers: number; previous: number }
  /**
   * HUP: read the settings again (config file, CORRAL_CMD_ARGS) beside the
   * event stream, and answer with SETTINGS_READ. Signals that come meanwhile
   * are not held up by the read.
   */
  | { type: 'readSettings' }
  /** A reload starts `generation`, whose workers get `settings`: the settings in force from now on. */
  | { type: 'reloadStarted'; generation: number; settings: S }
  /** A HUP's settings were refused (SETTINGS_READ's `refused`, each problem logged): no reload starts for it. */
  | { type: 'reloadRefused'; problems: readonly string[] }
  /** The reload's new `generation` is all ready: the old ones are told to stop. */
  | { type: 'reloadCompleted'; generation: number }
  /** The reload failed: `generation` serves on, and its `settings` are in force again. */
  | { type: 'reloadAbandoned'; generation: number; settings: S }
  | { type: 'reopenLogs' }
  /** USR2: run the preExec hook (if any), then report PRE_EXEC_DONE or PRE_EXEC_FAILED. */
  | { type: 'preExec' }
  | { type: 'reexec' }
  | { type: 'restorePidfile' }
  | { type: 'ready'; workers: number }
  | { type: 'log'; level: 'debug' | 'info' | 'warning' | 'error' | 'critical'; message: string }
  | { type: 'exit'; code: number }

export interface MasterContext<S extends MasterSettings = MasterSettings> {
  /** How many workers of the current generation the master converges to. */
  readonly target: number
  /** The settings in force: new workers are started with them (their generation's). */
  readonly settings: S
  /** The previous generation's, put back if a reload is abandoned. */
  readonly previousSettings: S
  /** Re-read by a HUP, for the reload it starts or queued: undefined keeps `settings`. */
  readonly nextSettings: S | undefined
  /** The master's clock, advanced by TICK events: the machine owns no timers. */
  readonly now: number
  /** The generation new workers belong to; a reload starts the next one. */
  readonly generation: number
  /** The generation to fall back to if a reload's workers cannot boot. */
  readonly previousGeneration: number
  /** Its size: a reload that is abandoned goes back to it. */
  readonly previousTarget: number
  /** The reload in flight started from running.idle (after WINCH), and goes back there if abandoned. */
  readonly reloadFromIdle: boolean
  readonly nextId: number
  readonly workers: readonly WorkerRecord[]
  /** A HUP that arrived while a reload, boot or re-exec was in flight. */
  readonly reloadQueued: boolean
  /** HUPs whose settings the shell is still reading (readSettings sent, SETTINGS_READ not back yet). */
  readonly settingsReads: number
  /** After USR2, once the new master is ready: hand over by itself, or wait for the operator. */
  readonly upgrade: UpgradeMode
  /** The new master started by USR2, as far as this one knows. */
  readonly childMaster: 'none' | 'starting' | 'ready'
  /**
   * The launch: until a worker of the first generation is ready, one is
   * spawned at a time, so that the first one does not share the CPU with the
   * others' start-up (`booting` clears it as it ends).
   */
  readonly launching: boolean
  /** Consecutive deaths of young workers: the respawn back-off grows with it. */
  readonly crashStreak: number
  /** No respawn before this time (crash-loop back-off). */
  readonly respawnAt: number
  readonly exitCode: number
}

type UpgradeMode = 'manual' | 'auto'

export interface MasterInput<S extends MasterSettings = MasterSettings> {
  settings: S
  upgrade?: UpgradeMode
  now?: number
}

export interface Step {
  readonly context: MasterContext
  readonly commands: readonly MasterCommand[]
}

const timeoutMs = (ctx: MasterContext) => ctx.settings.timeout * 1000
const gracefulMs = (ctx: MasterContext) => ctx.settings.gracefulTimeout * 1000

/** A quick stop still SIGKILLs stragglers, but sooner than a graceful one. */
const QUICK_STOP_MS = 1_000
/** A worker that dies younger than this counts towards the crash streak. */
const MIN_UPTIME_MS = 5_000
export const MAX_BACKOFF_MS = 10_000

export function initialContext(input: MasterInput): MasterContext {
  return {
    target: Math.max(1, input.settings.workers),
    settings: input.settings,
    previousSettings: input.settings,
    nextSettings: undefined,
    now: input.now ?? 0,
    generation: 0,
    previousGeneration: 0,
    previousTarget: Math.max(1, input.settings.workers),
    reloadFromIdle: false,
    nextId: 1,
    workers: [],
    reloadQueued: false,
    settingsReads: 0,
    upgrade: input.upgrade ?? 'manual',
    childMaster: 'none',
    launching: true,
    crashStreak: 0,
    respawnAt: 0,
    exitCode: OK,
  }
}

const isLive = (w: Pick<WorkerRecord, 'status'>) => w.status === 'booting' || w.status === 'running'

/** Live serving workers of the generation the master is converging to. */
function currentWorkers(ctx: MasterContext): WorkerRecord[] {
  return ctx.workers.filter((w) => w.generation === ctx.generation && w.role === 'serving' && isLive(w))
}

/** Live spares of the current generation, loading or waiting. */
function currentSpares(ctx: MasterContext): WorkerRecord[] {
  return ctx.workers.filter((w) => w.generation === ctx.generation && w.role === 'spare' && isLive(w))
}

/** --standby, as the settings in force say. */
const standbyTarget = (ctx: MasterContext): number => Math.max(0, ctx.settings.standby ?? 0)

/**
 * A worker as `corral ctl`, the metrics and the inspector show it: a spare
 * that has loaded the app and waits is `standby` (one still loading is
 * `booting`, as any worker is); any other worker is its status.
 */
export function workerState(w: Pick<WorkerRecord, 'role' | 'status'>): WorkerStatus | 'standby' {
  return w.role === 'spare' && w.status === 'running' ? 'standby' : w.status
}

/** Serving workers of the current generation that accept: spares never count. */
export function readyCount(ctx: MasterContext): number {
  return currentWorkers(ctx).filter((w) => w.status === 'running').length
}

function findWorker(ctx: MasterContext, id: number): WorkerRecord | undefined {
  return ctx.workers.find((w) => w.id === id)
}

function update(ctx: MasterContext, id: number, patch: Partial<WorkerRecord>): MasterContext {
  return { ...ctx, workers: ctx.workers.map((w) => (w.id === id ? { ...w, ...patch } : w)) }
}

function stopAll(ctx: MasterContext, victims: readonly WorkerRecord[], mode: StopMode, cause: ExitCause): Step {
  const deadline = ctx.now + (mode === 'graceful' ? gracefulMs(ctx) : Math.min(gracefulMs(ctx), QUICK_STOP_MS))
  const ids = new Set(victims.map((w) => w.id))
  return {
    context: {
      ...ctx,
      workers: ctx.workers.map((w) =>
        ids.has(w.id)
          ? {
              ...w,
              status: 'stopping',
              deadline: Math.min(w.status === 'stopping' ? w.deadline : Infinity, deadline),
              leaving: w.leaving ?? cause,
            }
          : w,
      ),
    },
    commands: victims.map((w) => ({ type: 'stopWorker', id: w.id, mode })),
  }
}

/**
 * Spawn, promote or stop workers of the current generation until there are
 * `target` live serving ones, then `--standby` spares behind them. An empty
 * serving place goes to a waiting spare first, at once (no back-off: the
 * spare is already loaded), and only then to a new process, after the
 * crash-loop back-off. Spares are started only once every serving worker is
 * ready, so that they never slow a launch, a reload or a replacement. Stopping
 * picks the oldest first, as gunicorn does.
 */
export function converge(ctx: MasterContext): Step {
  const live = currentWorkers(ctx)
  if (live.length > ctx.target) {
    const stopped = stopAll(ctx, live.slice(0, live.length - ctx.target), 'graceful', 'scaled-down')
    return then(stopped, convergeSpares(stopped.context))
  }
  const promoted = promoteSpares(ctx, ctx.target - live.length)
  const spawned = spawnServing(promoted.context)
  const spares = convergeSpares(spawned.context)
  return { context: spares.context, commands: [...promoted.commands, ...spawned.commands, ...spares.commands] }
}

/** Up to `places` waiting spares, oldest first, become serving workers (booting until they accept). */
function promoteSpares(ctx: MasterContext, places: number): Step {
  const waiting = currentSpares(ctx).filter((w) => w.status === 'running')
  const chosen = new Set(waiting.slice(0, Math.max(0, places)).map((w) => w.id))
  if (chosen.size === 0) return { context: ctx, commands: [] }
  return {
    context: {
      ...ctx,
      // Its serving life starts now: a promoted spare that dies young counts towards the crash streak.
      workers: ctx.workers.map((w) =>
        chosen.has(w.id) ? { ...w, role: 'serving', status: 'booting', spawnedAt: ctx.now, lastBeat: ctx.now } : w,
      ),
    },
    commands: [...chosen].map((id) => ({ type: 'promoteSpare', id })),
  }
}

/** New serving workers for the places still empty: one at a time during the launch, until one is ready. */
function spawnServing(ctx: MasterContext): Step {
  const live = currentWorkers(ctx).length
  const wanted = ctx.launching && readyCount(ctx) === 0 ? Math.min(1, ctx.target) : ctx.target
  return spawn(ctx, Math.max(0, wanted - live), 'serving')
}

/** Spares follow once every serving worker is ready; a surplus (fewer asked for) stops, oldest first. */
function convergeSpares(ctx: MasterContext): Step {
  const spares = currentSpares(ctx)
  const wanted = standbyTarget(ctx)
  if (spares.length > wanted) return stopAll(ctx, spares.slice(0, spares.length - wanted), 'graceful', 'scaled-down')
  if (readyCount(ctx) < ctx.target) return { context: ctx, commands: [] }
  return spawn(ctx, wanted - spares.length, 'spare')
}

/** Two steps in a row: the second was computed from the first's context. */
function then(first: Step, second: Step): Step {
  return { context: second.context, commands: [...first.commands, ...second.commands] }
}

function spawn(ctx: MasterContext, count: number, role: WorkerRole): Step {
  if (count <= 0 || ctx.now < ctx.respawnAt) return { context: ctx, commands: [] }
  const commands: MasterCommand[] = []
  const workers = [...ctx.workers]
  let nextId = ctx.nextId
  for (let i = 0; i < count; i++) {
    const id = nextId++
    workers.push({
      id,
      generation: ctx.generation,
      role,
      status: 'booting',
      spawnedAt: ctx.now,
      lastBeat: ctx.now,
      timeoutMs: timeoutMs(ctx),
      deadline: Infinity,
    })
    commands.push({ type: 'spawnWorker', id, generation: ctx.generation, role, settings: ctx.settings })
  }
  return { context: { ...ctx, workers, nextId }, commands }
}

export function markReady(ctx: MasterContext, id: number): MasterContext {
  const w = findWorker(ctx, id)
  if (w?.status !== 'booting') return ctx
  return update(ctx, id, { status: 'running', lastBeat: ctx.now })
}

/**
 * The worker is leaving by itself, on purpose (max requests, max memory): it
 * drains, and its exit is not a crash. Counting it out of the live set now
 * lets converge start its replacement while it finishes.
 */
export function retiring(ctx: MasterContext, id: number, cause: RetireCause): MasterContext {
  const w = findWorker(ctx, id)
  if (!w || !isLive(w)) return ctx
  return update(ctx, id, { status: 'stopping', deadline: ctx.now + gracefulMs(ctx), leaving: cause })
}

export function heartbeat(ctx: MasterContext, id: number): MasterContext {
  return findWorker(ctx, id) ? update(ctx, id, { lastBeat: ctx.now }) : ctx
}

/** A worker process's exit, as the shell reports it (gunicorn's CHLD). */
export interface WorkerExit {
  readonly id: number
  readonly pid?: number | undefined
  readonly code: number | null
  readonly signal: string | null
}

/** The worker is gone: removed from the context, and said so (`workerExited`). Nothing else follows. */
export function removeWorker(ctx: MasterContext, exit: WorkerExit): Step {
  const w = findWorker(ctx, exit.id)
  if (!w) return { context: ctx, commands: [] }
  const { id, pid, code, signal } = exit
  const cause = w.leaving ?? (isBootFailure(ctx, id, code) ? 'boot-failure' : 'crash')
  return {
    context: { ...ctx, workers: ctx.workers.filter((x) => x.id !== id) },
    commands: [{ type: 'workerExited', id, pid, generation: w.generation, code, signal, cause }],
  }
}

/** A worker is gone: forget it, and if nobody asked it to go, count the crash. */
export function forget(ctx: MasterContext, exit: WorkerExit): Step {
  const { id } = exit
  const w = findWorker(ctx, id)
  const removed = removeWorker(ctx, exit)
  // Unknown, asked to go (stopping), or put down (killed): none is a crash.
  if (!w || w.status === 'stopping' || w.status === 'killed') return removed
  const rest = removed.context
  const young = ctx.now - w.spawnedAt < MIN_UPTIME_MS
  const crashStreak = young ? ctx.crashStreak + 1 : 0
  const delay = crashStreak === 0 ? 0 : Math.min(100 * 2 ** (crashStreak - 1), MAX_BACKOFF_MS)
  const commands: MasterCommand[] = [...removed.commands]
  if (delay > 0)
    commands.push({
      type: 'log',
      level: 'warning',
      message: `Worker ${id} died ${crashStreak} time(s) in a row soon after start; respawning in ${delay} ms`,
    })
  return { context: { ...rest, crashStreak, respawnAt: ctx.now + delay }, commands }
}

/** The exit of a booting worker with code 3 or 4: the app cannot run. */
export function isBootFailure(ctx: MasterContext, id: number, code: number | null): boolean {
  const w = findWorker(ctx, id)
  return w !== undefined && w.status === 'booting' && (code === BOOT_ERROR || code === APP_LOAD_ERROR)
}

/**
 * A boot failure halts the master only when nothing of it is serving: at
 * start (gunicorn's rule), or when every worker is gone. While running
 * workers serve, a replacement that cannot boot (the code on disk broke under
 * a running server) is a crash with back-off, not an outage.
 */
export function isFatalBootFailure(ctx: MasterContext, id: number, code: number | null): boolean {
  return isBootFailure(ctx, id, code) && !ctx.workers.some((w) => w.id !== id && w.status === 'running')
}

/**
 * The clock moved: abort workers whose heartbeat is overdue and SIGKILL
 * stopping workers past their deadline.
 *
 * The suspend guard (unicorn's): a tick that comes longer after the one
 * before than a worker's whole timeout means the master itself was not
 * running for that long (a suspended VM, a stopped process): the worker's
 * beats from that time, if any, are still unread in its pipe, so its silence
 * says nothing, and its heartbeat clock restarts from now instead of aborting
 * it. A shorter gap (a loaded machine) is judged as usual: forgiving those
 * too would let a stuck worker live on for as long as the machine is busy.
 * The clock is monotonic (the shell's), so a step of the wall clock is no gap.
 */
export function tick(ctx: MasterContext, now: number): Step {
  const commands: MasterCommand[] = []
  const gap = now - ctx.now
  let graced = 0
  const workers = ctx.workers.map((w): WorkerRecord => {
    if (w.status === 'stopping' && now >= w.deadline) {
      commands.push({ type: 'killWorker', id: w.id })
      return { ...w, status: 'killed' }
    }
    if (isLive(w) && w.timeoutMs > 0 && gap > w.timeoutMs) {
      graced++
      return { ...w, lastBeat: now }
    }
    if (isLive(w) && w.timeoutMs > 0 && now - w.lastBeat > w.timeoutMs) {
      commands.push({ type: 'abortWorker', id: w.id })
      return { ...w, status: 'killed', leaving: w.leaving ?? 'timeout' }
    }
    return w
  })
  if (graced > 0)
    commands.unshift({
      type: 'log',
      level: 'warning',
      message: `The master did not run for ${(gap / 1000).toFixed(1)} s (suspended or starved): ${graced} worker(s) get a fresh heartbeat timeout instead of an abort`,
    })
  return { context: { ...ctx, now, workers }, commands }
}

/**
 * A reload starts the next generation, with the settings the HUP re-read if
 * it could (their number of workers replaces the target, TTIN/TTOU's
 * included, as gunicorn does), else with those in force. What it replaces is
 * kept, for an abandon.
 */
export function startGeneration(ctx: MasterContext): Step {
  const settings = ctx.nextSettings ?? ctx.settings
  const resized = ctx.nextSettings ? setTarget(ctx, ctx.nextSettings.workers) : { context: ctx, commands: [] }
  const generation = ctx.generation + 1
  return {
    context: {
      ...resized.context,
      settings,
      previousSettings: ctx.settings,
      nextSettings: undefined,
      previousGeneration: ctx.generation,
      previousTarget: ctx.target,
      generation,
      reloadQueued: false,
    },
    commands: [...resized.commands, { type: 'reloadStarted', generation, settings }],
  }
}

/** The new generation is ready: the old ones stop gracefully. */
export function retireOldGenerations(ctx: MasterContext): Step {
  const retired = stopAll(
    ctx,
    ctx.workers.filter((w) => w.generation !== ctx.generation && isLive(w)),
    'graceful',
    'reload',
  )
  return {
    context: retired.context,
    commands: [{ type: 'reloadCompleted', generation: ctx.generation }, ...retired.commands],
  }
}

/** The new generation cannot boot: stop it and go back to the old one. */
export function abandonGeneration(ctx: MasterContext): Step {
  const failed = ctx.workers.filter((w) => w.generation === ctx.generation && isLive(w))
  const stopped = stopAll(ctx, failed, 'quick', 'abandoned-reload')
  // Back to the generation that serves, at the size it served with: the
  // settings that came with the failed reload are not trusted either.
  const resized = setTarget(stopped.context, ctx.previousTarget)
  const generation = ctx.previousGeneration
  const settings = ctx.previousSettings
  return {
    context: { ...resized.context, generation, settings },
    commands: [...stopped.commands, ...resized.commands, { type: 'reloadAbandoned', generation, settings }],
  }
}

export function stopEverything(ctx: MasterContext, mode: StopMode): Step {
  const victims = ctx.workers.filter((w) => isLive(w) || (mode === 'quick' && w.status === 'stopping'))
  return stopAll(ctx, victims, mode, 'stop')
}

/**
 * `corral ctl worker kill PID`: that one worker stops gracefully, as a
 * retiring one does; out of the live set, it is replaced by the next converge.
 */
export function stopOne(ctx: MasterContext, id: number): Step {
  const w = findWorker(ctx, id)
  if (!w || !isLive(w)) return { context: ctx, commands: [] }
  return stopAll(ctx, [w], 'graceful', 'killed')
}

/** A new target (never below one), said when it changes. */
export function setTarget(ctx: MasterContext, target: number): Step {
  const workers = Math.max(1, target)
  if (workers === ctx.target) return { context: ctx, commands: [] }
  return {
    context: { ...ctx, target: workers },
    commands: [{ type: 'workersChanged', workers, previous: ctx.target }],
  }
}
