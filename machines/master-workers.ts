// The master's bookkeeping of its workers, as pure functions from context to
// (new context, commands). The statechart in master.ts decides *when* each
// runs; these decide *what* follows. Keeping them apart lets a test check the
// arithmetic (how many to spawn, which to stop, when to kill) without a chart.

type WorkerStatus =
  | 'booting' // spawned, app not loaded yet
  | 'running' // told the master it is ready
  | 'stopping' // sent TERM/QUIT/INT, expected to exit by `deadline`
  | 'killed' // SIGKILL sent or pending (heartbeat abort, missed deadline)

interface WorkerRecord {
  readonly id: number
  readonly generation: number
  readonly status: WorkerStatus
  readonly spawnedAt: number
  readonly lastBeat: number
  /** The heartbeat timeout it was started with: a HUP may change it for later workers only. */
  readonly timeoutMs: number
  /** When a stopping worker is SIGKILLed if it is still alive. */
  readonly deadline: number
}

export type StopMode = 'graceful' | 'quick'

export type MasterCommand =
  | { type: 'spawnWorker'; id: number; generation: number }
  | { type: 'stopWorker'; id: number; mode: StopMode }
  | { type: 'killWorker'; id: number }
  | { type: 'abortWorker'; id: number }
  | { type: 'reopenLogs' }
  | { type: 'reexec' }
  | { type: 'restorePidfile' }
  | { type: 'ready'; workers: number }
  | { type: 'log'; level: 'debug' | 'info' | 'warning' | 'error' | 'critical'; message: string }
  | { type: 'exit'; code: number }

export interface MasterContext {
  /** How many workers of the current generation the master converges to. */
  readonly target: number
  readonly timeoutMs: number
  readonly gracefulMs: number
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
  /** After USR2, once the new master is ready: hand over by itself, or wait for the operator. */
  readonly upgrade: UpgradeMode
  /** The new master started by USR2, as far as this one knows. */
  readonly childMaster: 'none' | 'starting' | 'ready'
  /** Consecutive deaths of young workers: the respawn back-off grows with it. */
  readonly crashStreak: number
  /** No respawn before this time (crash-loop back-off). */
  readonly respawnAt: number
  readonly exitCode: number
}

type UpgradeMode = 'manual' | 'auto'

export interface MasterInput {
  workers: number
  upgrade?: UpgradeMode
  timeoutMs: number
  gracefulMs: number
  now?: number
}

export interface Step {
  readonly context: MasterContext
  readonly commands: readonly MasterCommand[]
}

/** A quick stop still SIGKILLs stragglers, but sooner than a graceful one. */
const QUICK_STOP_MS = 1_000
/** A worker that dies younger than this counts towards the crash streak. */
const MIN_UPTIME_MS = 5_000
export const MAX_BACKOFF_MS = 10_000

const BOOT_ERROR = 3
export const APP_LOAD_ERROR = 4

export function initialContext(input: MasterInput): MasterContext {
  return {
    target: Math.max(1, input.workers),
    timeoutMs: input.timeoutMs,
    gracefulMs: input.gracefulMs,
    now: input.now ?? 0,
    generation: 0,
    previousGeneration: 0,
    previousTarget: Math.max(1, input.workers),
    reloadFromIdle: false,
    nextId: 1,
    workers: [],
    reloadQueued: false,
    upgrade: input.upgrade ?? 'manual',
    childMaster: 'none',
    crashStreak: 0,
    respawnAt: 0,
    exitCode: 0,
  }
}

const isLive = (w: WorkerRecord) => w.status === 'booting' || w.status === 'running'

/** Live workers of the generation the master is converging to. */
function currentWorkers(ctx: MasterContext): WorkerRecord[] {
  return ctx.workers.filter((w) => w.generation === ctx.generation && isLive(w))
}

export function readyCount(ctx: MasterContext): number {
  return currentWorkers(ctx).filter((w) => w.status === 'running').length
}

function findWorker(ctx: MasterContext, id: number): WorkerRecord | undefined {
  return ctx.workers.find((w) => w.id === id)
}

function update(ctx: MasterContext, id: number, patch: Partial<WorkerRecord>): MasterContext {
  return { ...ctx, workers: ctx.workers.map((w) => (w.id === id ? { ...w, ...patch } : w)) }
}

function stopAll(ctx: MasterContext, victims: readonly WorkerRecord[], mode: StopMode): Step {
  const deadline = ctx.now + (mode === 'graceful' ? ctx.gracefulMs : Math.min(ctx.gracefulMs, QUICK_STOP_MS))
  const ids = new Set(victims.map((w) => w.id))
  return {
    context: {
      ...ctx,
      workers: ctx.workers.map((w) =>
        ids.has(w.id)
          ? { ...w, status: 'stopping', deadline: Math.min(w.status === 'stopping' ? w.deadline : Infinity, deadline) }
          : w,
      ),
    },
    commands: victims.map((w) => ({ type: 'stopWorker', id: w.id, mode })),
  }
}

/**
 * Spawn or stop workers of the current generation until there are `target`
 * live ones. Spawning waits for the crash-loop back-off; stopping picks the
 * oldest first, as gunicorn does.
 */
export function converge(ctx: MasterContext): Step {
  const live = currentWorkers(ctx)
  if (live.length > ctx.target) {
    return stopAll(ctx, live.slice(0, live.length - ctx.target), 'graceful')
  }
  if (live.length === ctx.target || ctx.now < ctx.respawnAt) return { context: ctx, commands: [] }
  const commands: MasterCommand[] = []
  const workers = [...ctx.workers]
  let nextId = ctx.nextId
  for (let i = live.length; i < ctx.target; i++) {
    const id = nextId++
    workers.push({
      id,
      generation: ctx.generation,
      status: 'booting',
      spawnedAt: ctx.now,
      lastBeat: ctx.now,
      timeoutMs: ctx.timeoutMs,
      deadline: Infinity,
    })
    commands.push({ type: 'spawnWorker', id, generation: ctx.generation })
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
export function retiring(ctx: MasterContext, id: number): MasterContext {
  const w = findWorker(ctx, id)
  if (!w || !isLive(w)) return ctx
  return update(ctx, id, { status: 'stopping', deadline: ctx.now + ctx.gracefulMs })
}

export function heartbeat(ctx: MasterContext, id: number): MasterContext {
  return findWorker(ctx, id) ? update(ctx, id, { lastBeat: ctx.now }) : ctx
}

/** A worker is gone: forget it, and if nobody asked it to go, count the crash. */
export function forget(ctx: MasterContext, id: number): Step {
  const w = findWorker(ctx, id)
  if (!w) return { context: ctx, commands: [] }
  const rest = { ...ctx, workers: ctx.workers.filter((x) => x.id !== id) }
  // Asked to go (stopping), or put down (killed): neither is a crash.
  if (w.status === 'stopping' || w.status === 'killed') return { context: rest, commands: [] }
  const young = ctx.now - w.spawnedAt < MIN_UPTIME_MS
  const crashStreak = young ? ctx.crashStreak + 1 : 0
  const delay = crashStreak === 0 ? 0 : Math.min(100 * 2 ** (crashStreak - 1), MAX_BACKOFF_MS)
  const commands: MasterCommand[] =
    delay > 0
      ? [
          {
            type: 'log',
            level: 'warning',
            message: `Worker ${id} died ${crashStreak} time(s) in a row soon after start; respawning in ${delay} ms`,
          },
        ]
      : []
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
 */
export function tick(ctx: MasterContext, now: number): Step {
  const commands: MasterCommand[] = []
  const workers = ctx.workers.map((w): WorkerRecord => {
    if (w.status === 'stopping' && now >= w.deadline) {
      commands.push({ type: 'killWorker', id: w.id })
      return { ...w, status: 'killed' }
    }
    if (isLive(w) && w.timeoutMs > 0 && now - w.lastBeat > w.timeoutMs) {
      commands.push({ type: 'abortWorker', id: w.id })
      return { ...w, status: 'killed' }
    }
    return w
  })
  return { context: { ...ctx, now, workers }, commands }
}

export function startGeneration(ctx: MasterContext): MasterContext {
  return {
    ...ctx,
    previousGeneration: ctx.generation,
    previousTarget: ctx.target,
    generation: ctx.generation + 1,
    reloadQueued: false,
  }
}

/** The new generation is ready: the old ones stop gracefully. */
export function retireOldGenerations(ctx: MasterContext): Step {
  return stopAll(
    ctx,
    ctx.workers.filter((w) => w.generation !== ctx.generation && isLive(w)),
    'graceful',
  )
}

/** The new generation cannot boot: stop it and go back to the old one. */
export function abandonGeneration(ctx: MasterContext): Step {
  const failed = ctx.workers.filter((w) => w.generation === ctx.generation && isLive(w))
  const step = stopAll(ctx, failed, 'quick')
  // Back to the generation that serves, at the size it served with: the
  // settings that came with the failed reload are not trusted either.
  return { ...step, context: { ...step.context, generation: ctx.previousGeneration, target: ctx.previousTarget } }
}

export function stopEverything(ctx: MasterContext, mode: StopMode): Step {
  const victims = ctx.workers.filter((w) => isLive(w) || (mode === 'quick' && w.status === 'stopping'))
  return stopAll(ctx, victims, mode)
}

/** Re-read settings (HUP): they shape workers started from now on. */
export function applySettings(
  ctx: MasterContext,
  s: { workers: number; timeoutMs: number; gracefulMs: number },
): MasterContext {
  return { ...setTarget(ctx, s.workers), timeoutMs: s.timeoutMs, gracefulMs: s.gracefulMs }
}

export function setTarget(ctx: MasterContext, target: number): MasterContext {
  return { ...ctx, target: Math.max(1, target) }
}
