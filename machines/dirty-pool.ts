// The dirty pool (spec/dirty.md) as a statechart: the master's supervision of
// its dirty workers, apart from the HTTP pool's. Pure like master.ts: no
// timers, no I/O; events in, commands out (DirtyCommand), carried out by
// src/dirty/pool.ts. The bookkeeping is in plain functions below the chart so
// a test can check the arithmetic without it.
import { assertEvent, enqueueActions, setup } from 'xstate'
import { BOOT_ERROR } from './exit-codes.ts'

type DirtyStatus = 'booting' | 'ready' | 'stopping' | 'killed'

/**
 * Why a dirty worker left: `crash` (nobody asked), `boot-failure` (exited 3
 * while loading its apps), `timeout` (a call or the worker's heartbeat passed
 * --dirty-timeout), `scaled-down` (`ctl dirty remove`), `reload` (its
 * generation was replaced), `abandoned-reload` (its generation could not
 * boot), `stop` (the master is stopping).
 */
type DirtyExitCause = 'crash' | 'boot-failure' | 'timeout' | 'scaled-down' | 'reload' | 'abandoned-reload' | 'stop'

interface DirtyWorkerRecord {
  readonly id: number
  /** Its place in the pool: what it carries depends on this alone (spec/dirty.md, Allocation). */
  readonly slot: number
  readonly generation: number
  readonly status: DirtyStatus
  readonly spawnedAt: number
  readonly lastBeat: number
  /** When a stopping worker is SIGKILLed if it is still alive. */
  readonly deadline: number
  readonly leaving?: DirtyExitCause
}

/** One --dirty-app: `count` undefined means every dirty worker carries it. */
export interface DirtyAppSpec {
  readonly name: string
  readonly module: string
  readonly exportName?: string | undefined
  readonly count?: number | undefined
}

/**
 * `NAME=MODULE[:EXPORT][:N]` (--dirty-app): the app, or why the text is not
 * one. A module path holding ':' cannot be named this way (none on Linux).
 */
export function parseDirtyApp(text: string): DirtyAppSpec | string {
  const eq = text.indexOf('=')
  const name = text.slice(0, eq)
  if (eq <= 0 || !/^[\w.-]+$/.test(name)) return `expected NAME=MODULE[:EXPORT][:N], got ${JSON.stringify(text)}`
  const parts = text.slice(eq + 1).split(':')
  let count: number | undefined
  const last = parts.at(-1) ?? ''
  if (parts.length > 1 && /^\d+$/.test(last)) {
    count = Number(last)
    parts.pop()
    if (count < 1) return `the count of dirty app ${name} must be 1 or more, got ${last}`
  }
  const [module = '', exportName, ...extra] = parts
  if (module === '' || extra.length > 0 || exportName === '')
    return `expected NAME=MODULE[:EXPORT][:N], got ${JSON.stringify(text)}`
  return { name, module, exportName, count }
}

/** The apps of the settings (each already checked when the settings were read). */
export function dirtyAppsOf(settings: DirtySettings): DirtyAppSpec[] {
  return settings.dirtyApps.map(parseDirtyApp).filter((a): a is DirtyAppSpec => typeof a !== 'string')
}

/** What the chart reads of the settings (seconds); the shell passes its whole settings object through. */
export interface DirtySettings {
  /** --dirty-app, as given: NAME=MODULE[:EXPORT][:N]. */
  readonly dirtyApps: readonly string[]
  readonly dirtyWorkers: number
  readonly dirtyTimeout: number
  readonly dirtyGracefulTimeout: number
}

export type DirtyStopMode = 'graceful' | 'quick'

export type DirtyCommand<S extends DirtySettings = DirtySettings> =
  | { type: 'spawnDirty'; id: number; slot: number; generation: number; apps: readonly string[]; settings: S }
  | { type: 'stopDirty'; id: number; mode: DirtyStopMode }
  | { type: 'killDirty'; id: number; cause: DirtyExitCause }
  | {
      type: 'dirtyExited'
      id: number
      slot: number
      generation: number
      code: number | null
      signal: string | null
      cause: DirtyExitCause
    }
  /** The dirty workers HTTP workers may call now (ready, of the serving generation); `draining`: the pool is stopping. */
  | { type: 'roster'; ids: readonly number[]; draining: boolean; settings: S }
  | { type: 'log'; level: 'debug' | 'info' | 'warning' | 'error'; message: string }
  /** STOP was asked and every dirty worker is gone. */
  | { type: 'stopped' }

export type DirtyEvent<S extends DirtySettings = DirtySettings> =
  | { type: 'DIRTY_READY'; id: number }
  /** A heartbeat: `oldestCallMs` is how long its oldest call in flight has run (0: none). */
  | { type: 'DIRTY_BEAT'; id: number; oldestCallMs: number }
  | { type: 'DIRTY_EXIT'; id: number; code: number | null; signal: string | null }
  | { type: 'TICK'; now: number }
  /** `corral ctl dirty add|remove N`: `by` is +N or -N. */
  | { type: 'SCALE'; by: number }
  /** HUP: a new generation with these settings. */
  | { type: 'RELOAD'; settings: S }
  | { type: 'STOP'; mode: DirtyStopMode }

export interface DirtyContext<S extends DirtySettings = DirtySettings> {
  readonly settings: S
  /** The serving generation's settings: a reload that is abandoned goes back to them. */
  readonly servingSettings: S
  /** How many slots the pool converges to. */
  readonly target: number
  readonly servingTarget: number
  /** The generation new dirty workers belong to. */
  readonly generation: number
  /** The generation HTTP workers call (differs from `generation` while a reload boots). */
  readonly serving: number
  readonly now: number
  readonly nextId: number
  readonly workers: readonly DirtyWorkerRecord[]
  readonly crashStreak: number
  readonly respawnAt: number
  /** The roster last announced, so the same one is not sent twice. */
  readonly announced: { readonly ids: readonly number[]; readonly draining: boolean }
  readonly draining: boolean
}

export interface DirtyInput<S extends DirtySettings = DirtySettings> {
  settings: S
  now?: number
}

export interface DirtyStep {
  readonly context: DirtyContext
  readonly commands: readonly DirtyCommand[]
}

/** A dirty worker that dies younger than this counts towards the crash streak. */
const MIN_UPTIME_MS = 5_000
export const DIRTY_MAX_BACKOFF_MS = 10_000
/**
 * A dirty worker beats each second; one silent for --dirty-timeout and two
 * beats more is stuck. The grace lets a call's own timeout (measured by its
 * caller from the call's start, which may follow the last beat by up to a
 * second) fail the call as a timeout before its worker is killed.
 */
const BEAT_GRACE_MS = 2_000
/** A quick stop still SIGKILLs stragglers, but after this at most. */
const QUICK_STOP_MS = 1_000

/** The fewest slots that give every app its count: none without a --dirty-app. */
export function minimumSlots(settings: DirtySettings): number {
  const apps = dirtyAppsOf(settings)
  return apps.length === 0 ? 0 : Math.max(1, ...apps.map((a) => a.count ?? 1))
}

/** The pool's size from the settings: --dirty-workers, at least what the apps need; none without an app. */
function slotsFor(settings: DirtySettings): number {
  return minimumSlots(settings) === 0 ? 0 : Math.max(minimumSlots(settings), settings.dirtyWorkers)
}

/** The apps slot `slot` carries: those without a count, and those whose count reaches past it. */
export function appsOfSlot(settings: DirtySettings, slot: number): string[] {
  return dirtyAppsOf(settings)
    .filter((a) => a.count === undefined || slot < a.count)
    .map((a) => a.name)
}

function initialDirtyContext(input: DirtyInput): DirtyContext {
  const target = slotsFor(input.settings)
  return {
    settings: input.settings,
    servingSettings: input.settings,
    target,
    servingTarget: target,
    generation: 0,
    serving: 0,
    now: input.now ?? 0,
    nextId: 1,
    workers: [],
    crashStreak: 0,
    respawnAt: 0,
    announced: { ids: [], draining: false },
    draining: false,
  }
}

const isLive = (w: DirtyWorkerRecord) => w.status === 'booting' || w.status === 'ready'
const timeoutMs = (ctx: DirtyContext) => ctx.settings.dirtyTimeout * 1000

function liveOf(ctx: DirtyContext, generation: number): DirtyWorkerRecord[] {
  return ctx.workers.filter((w) => w.generation === generation && isLive(w))
}

/** What HTTP workers may call: the ready dirty workers of the serving generation. */
export function rosterOf(ctx: DirtyContext): number[] {
  if (ctx.draining) return []
  return ctx.workers.filter((w) => w.generation === ctx.serving && w.status === 'ready').map((w) => w.id)
}

/** Add a roster command when what HTTP workers may call changed. */
function announce(step: DirtyStep): DirtyStep {
  const { context } = step
  const ids = rosterOf(context)
  const { announced } = context
  const same =
    announced.draining === context.draining &&
    ids.length === announced.ids.length &&
    ids.every((id, i) => id === announced.ids[i])
  if (same) return step
  return {
    context: { ...context, announced: { ids, draining: context.draining } },
    commands: [
      ...step.commands,
      { type: 'roster', ids, draining: context.draining, settings: context.servingSettings },
    ],
  }
}

function stopThem(
  ctx: DirtyContext,
  victims: readonly DirtyWorkerRecord[],
  mode: DirtyStopMode,
  cause: DirtyExitCause,
): DirtyStep {
  if (victims.length === 0) return { context: ctx, commands: [] }
  const graceful = ctx.settings.dirtyGracefulTimeout * 1000
  const deadline = ctx.now + (mode === 'graceful' ? graceful : Math.min(graceful, QUICK_STOP_MS))
  const ids = new Set(victims.map((w) => w.id))
  return {
    context: {
      ...ctx,
      workers: ctx.workers.map((w) =>
        ids.has(w.id)
          ? { ...w, status: 'stopping', deadline: Math.min(w.deadline, deadline), leaving: w.leaving ?? cause }
          : w,
      ),
    },
    commands: victims.map((w) => ({ type: 'stopDirty', id: w.id, mode })),
  }
}

/**
 * Spawn a dirty worker for every empty slot of the generation being built
 * (after the crash back-off), and stop the ones in slots past the target,
 * highest slot first.
 */
function converge(ctx: DirtyContext): DirtyStep {
  const live = liveOf(ctx, ctx.generation)
  const surplus = live.filter((w) => w.slot >= ctx.target)
  const stopped = stopThem(ctx, surplus, 'graceful', 'scaled-down')
  let next = stopped.context
  const commands: DirtyCommand[] = [...stopped.commands]
  if (next.now < next.respawnAt) return { context: next, commands }
  const taken = new Set(live.map((w) => w.slot))
  const workers = [...next.workers]
  let nextId = next.nextId
  for (let slot = 0; slot < next.target; slot++) {
    if (taken.has(slot)) continue
    const id = nextId++
    workers.push({
      id,
      slot,
      generation: next.generation,
      status: 'booting',
      spawnedAt: next.now,
      lastBeat: next.now,
      deadline: Infinity,
    })
    commands.push({
      type: 'spawnDirty',
      id,
      slot,
      generation: next.generation,
      apps: appsOfSlot(next.settings, slot),
      settings: next.settings,
    })
  }
  next = { ...next, workers, nextId }
  return { context: next, commands }
}

function markReady(ctx: DirtyContext, id: number): DirtyContext {
  const w = ctx.workers.find((x) => x.id === id)
  if (w?.status !== 'booting') return ctx
  return { ...ctx, workers: ctx.workers.map((x) => (x.id === id ? { ...x, status: 'ready', lastBeat: ctx.now } : x)) }
}

/** A heartbeat; one whose oldest call passed --dirty-timeout gets its worker killed. */
function beat(ctx: DirtyContext, id: number, oldestCallMs: number): DirtyStep {
  const w = ctx.workers.find((x) => x.id === id)
  if (!w) return { context: ctx, commands: [] }
  const limit = timeoutMs(ctx)
  if (isLive(w) && limit > 0 && oldestCallMs > limit) return killFor(ctx, w, 'timeout')
  return {
    context: { ...ctx, workers: ctx.workers.map((x) => (x.id === id ? { ...x, lastBeat: ctx.now } : x)) },
    commands: [],
  }
}

function killFor(ctx: DirtyContext, w: DirtyWorkerRecord, cause: DirtyExitCause): DirtyStep {
  return {
    context: {
      ...ctx,
      workers: ctx.workers.map((x) => (x.id === w.id ? { ...x, status: 'killed', leaving: x.leaving ?? cause } : x)),
    },
    commands: [
      { type: 'log', level: 'error', message: `DIRTY WORKER TIMEOUT (id:${w.id}): past --dirty-timeout; replacing it` },
      { type: 'killDirty', id: w.id, cause },
    ],
  }
}

/** The clock moved: SIGKILL silent live workers and stopping ones past their deadline. */
function tick(ctx: DirtyContext, now: number): DirtyStep {
  let next: DirtyContext = { ...ctx, now }
  const commands: DirtyCommand[] = []
  const limit = timeoutMs(ctx)
  for (const w of ctx.workers) {
    if (w.status === 'stopping' && now >= w.deadline) {
      next = {
        ...next,
        workers: next.workers.map((x) => (x.id === w.id ? { ...x, status: 'killed' } : x)),
      }
      commands.push({ type: 'killDirty', id: w.id, cause: w.leaving ?? 'stop' })
    } else if (isLive(w) && limit > 0 && now - w.lastBeat > limit + BEAT_GRACE_MS) {
      const killed = killFor(next, w, 'timeout')
      next = killed.context
      commands.push(...killed.commands)
    }
  }
  return { context: next, commands }
}

function isBootFailure(ctx: DirtyContext, id: number, code: number | null): boolean {
  const w = ctx.workers.find((x) => x.id === id)
  return w?.status === 'booting' && code === BOOT_ERROR
}

/** A dirty worker is gone: forgotten, said so, and if nobody asked it to go, a crash with back-off. */
function forget(ctx: DirtyContext, id: number, code: number | null, signal: string | null): DirtyStep {
  const w = ctx.workers.find((x) => x.id === id)
  if (!w) return { context: ctx, commands: [] }
  const cause: DirtyExitCause = w.leaving ?? (isBootFailure(ctx, id, code) ? 'boot-failure' : 'crash')
  const rest: DirtyContext = { ...ctx, workers: ctx.workers.filter((x) => x.id !== id) }
  const exited: DirtyCommand = { type: 'dirtyExited', id, slot: w.slot, generation: w.generation, code, signal, cause }
  if (w.status === 'stopping' || w.status === 'killed') return { context: rest, commands: [exited] }
  const young = ctx.now - w.spawnedAt < MIN_UPTIME_MS
  const crashStreak = young ? ctx.crashStreak + 1 : 0
  const delay = crashStreak === 0 ? 0 : Math.min(100 * 2 ** (crashStreak - 1), DIRTY_MAX_BACKOFF_MS)
  const commands: DirtyCommand[] = [exited]
  if (delay > 0)
    commands.push({
      type: 'log',
      level: 'warning',
      message: `Dirty worker ${id} died ${crashStreak} time(s) in a row soon after start; respawning in ${delay} ms`,
    })
  return { context: { ...rest, crashStreak, respawnAt: ctx.now + delay }, commands }
}

/** Every slot of the generation being built has a ready worker. */
function generationReady(ctx: DirtyContext): boolean {
  const ready = ctx.workers.filter((w) => w.generation === ctx.generation && w.status === 'ready')
  return ready.length >= ctx.target
}

/** `ctl dirty add|remove`: never below the fewest slots the apps need. */
function scale(ctx: DirtyContext, by: number): DirtyStep {
  if (minimumSlots(ctx.settings) === 0)
    return {
      context: ctx,
      commands: [{ type: 'log', level: 'info', message: 'dirty add|remove ignored: no --dirty-app' }],
    }
  const target = Math.max(minimumSlots(ctx.settings), ctx.target + by)
  if (target === ctx.target)
    return {
      context: ctx,
      commands: [
        { type: 'log', level: 'info', message: `dirty remove ignored: the apps need ${target} dirty worker(s)` },
      ],
    }
  const scaled = converge({
    ...ctx,
    target,
    servingTarget: ctx.generation === ctx.serving ? target : ctx.servingTarget,
  })
  return {
    context: scaled.context,
    commands: [
      { type: 'log', level: 'info', message: `Number of dirty workers: ${ctx.target} -> ${target}` },
      ...scaled.commands,
    ],
  }
}

/** HUP: a new generation, with the re-read settings; one still booting from an earlier HUP is dropped. */
function startGeneration<S extends DirtySettings>(ctx: DirtyContext, settings: S): DirtyStep {
  const unfinished = ctx.workers.filter((w) => w.generation !== ctx.serving && isLive(w))
  const dropped = stopThem(ctx, unfinished, 'quick', 'reload')
  const generation = ctx.generation + 1
  const started = converge({
    ...dropped.context,
    settings,
    generation,
    target: slotsFor(settings),
    crashStreak: 0,
    respawnAt: 0,
  })
  return {
    context: started.context,
    commands: [
      { type: 'log', level: 'info', message: `Reloading: starting dirty worker generation ${generation}` },
      ...dropped.commands,
      ...started.commands,
    ],
  }
}

/** The new generation is all ready: it serves, and the old ones drain. */
function completeGeneration(ctx: DirtyContext): DirtyStep {
  const promoted: DirtyContext = {
    ...ctx,
    serving: ctx.generation,
    servingSettings: ctx.settings,
    servingTarget: ctx.target,
  }
  const old = ctx.workers.filter((w) => w.generation !== ctx.generation && isLive(w))
  const stopped = stopThem(promoted, old, 'graceful', 'reload')
  return {
    context: stopped.context,
    commands: [
      { type: 'log', level: 'info', message: `Dirty reload complete: generation ${ctx.generation} is serving` },
      ...stopped.commands,
    ],
  }
}

/** The new generation cannot boot: it is stopped, and the serving one keeps its settings. */
function abandonGeneration(ctx: DirtyContext): DirtyStep {
  const failed = ctx.workers.filter((w) => w.generation === ctx.generation && isLive(w))
  const back: DirtyContext = {
    ...ctx,
    generation: ctx.serving,
    settings: ctx.servingSettings,
    target: ctx.servingTarget,
  }
  const stopped = stopThem(back, failed, 'quick', 'abandoned-reload')
  return {
    context: stopped.context,
    commands: [
      {
        type: 'log',
        level: 'error',
        message: `Dirty reload abandoned: generation ${ctx.generation} could not boot; generation ${ctx.serving} keeps serving`,
      },
      ...stopped.commands,
    ],
  }
}

function stopEverything(ctx: DirtyContext, mode: DirtyStopMode): DirtyStep {
  const going = ctx.workers.filter((w) => w.status !== 'killed')
  return stopThem({ ...ctx, draining: true }, going, mode, 'stop')
}

type Enqueue = { assign: (ctx: DirtyContext) => void; emit: (cmd: DirtyCommand) => void }

function apply(enqueue: Enqueue, step: DirtyStep): void {
  const announced = announce(step)
  enqueue.assign(announced.context)
  for (const command of announced.commands) enqueue.emit(command)
}

/** Several steps one after the other, as one. */
function chain(ctx: DirtyContext, ...steps: ((ctx: DirtyContext) => DirtyStep)[]): DirtyStep {
  let context = ctx
  const commands: DirtyCommand[] = []
  for (const step of steps) {
    const next = step(context)
    context = next.context
    commands.push(...next.commands)
  }
  return { context, commands }
}

const exitOf = (event: DirtyEvent) => {
  assertEvent(event, 'DIRTY_EXIT')
  return event
}

export const dirtyPoolMachine = setup({
  types: {
    context: {} as DirtyContext,
    events: {} as DirtyEvent,
    emitted: {} as DirtyCommand,
    input: {} as DirtyInput,
  },
  actions: {
    converge: enqueueActions(({ context, enqueue }) => apply(enqueue, converge(context))),
    markReady: enqueueActions(({ context, event, enqueue }) => {
      assertEvent(event, 'DIRTY_READY')
      apply(enqueue, { context: markReady(context, event.id), commands: [] })
    }),
    beat: enqueueActions(({ context, event, enqueue }) => {
      assertEvent(event, 'DIRTY_BEAT')
      apply(enqueue, beat(context, event.id, event.oldestCallMs))
    }),
    forget: enqueueActions(({ context, event, enqueue }) => {
      const { id, code, signal } = exitOf(event)
      apply(enqueue, forget(context, id, code, signal))
    }),
    // A replacement is spawned as soon as the back-off allows: forget, then converge.
    forgetAndConverge: enqueueActions(({ context, event, enqueue }) => {
      const { id, code, signal } = exitOf(event)
      apply(
        enqueue,
        chain(context, (c) => forget(c, id, code, signal), converge),
      )
    }),
    tick: enqueueActions(({ context, event, enqueue }) => {
      assertEvent(event, 'TICK')
      apply(
        enqueue,
        chain(context, (c) => tick(c, event.now), converge),
      )
    }),
    stoppingTick: enqueueActions(({ context, event, enqueue }) => {
      assertEvent(event, 'TICK')
      apply(enqueue, tick(context, event.now))
    }),
    scale: enqueueActions(({ context, event, enqueue }) => {
      assertEvent(event, 'SCALE')
      apply(enqueue, scale(context, event.by))
    }),
    startGeneration: enqueueActions(({ context, event, enqueue }) => {
      assertEvent(event, 'RELOAD')
      apply(enqueue, startGeneration(context, event.settings))
    }),
    completeGeneration: enqueueActions(({ context, enqueue }) => apply(enqueue, completeGeneration(context))),
    abandonGeneration: enqueueActions(({ context, event, enqueue }) => {
      const { id, code, signal } = exitOf(event)
      apply(
        enqueue,
        chain(context, (c) => forget(c, id, code, signal), abandonGeneration),
      )
    }),
    stopEverything: enqueueActions(({ context, event, enqueue }) => {
      assertEvent(event, 'STOP')
      apply(enqueue, stopEverything(context, event.mode))
    }),
    stopped: enqueueActions(({ enqueue }) => enqueue.emit({ type: 'stopped' })),
  },
  guards: {
    generationReady: ({ context }) => generationReady(context),
    newGenerationBootFailed: ({ context, event }) => {
      const { id, code } = exitOf(event)
      const w = context.workers.find((x) => x.id === id)
      return w?.generation === context.generation && isBootFailure(context, id, code)
    },
    allGone: ({ context }) => context.workers.length === 0,
  },
}).createMachine({
  id: 'dirtyPool',
  context: ({ input }) => initialDirtyContext(input),
  initial: 'starting',
  states: {
    // The first generation boots; calls get DIRTY_NO_WORKER until a carrier is ready.
    starting: {
      entry: 'converge',
      always: { guard: 'generationReady', target: 'running' },
      on: {
        DIRTY_READY: { actions: 'markReady' },
        DIRTY_BEAT: { actions: 'beat' },
        DIRTY_EXIT: { actions: 'forgetAndConverge' },
        TICK: { actions: 'tick' },
        SCALE: { actions: 'scale' },
        RELOAD: { target: 'reloading', actions: 'startGeneration' },
        STOP: { target: 'stopping', actions: 'stopEverything' },
      },
    },
    running: {
      on: {
        DIRTY_READY: { actions: 'markReady' },
        DIRTY_BEAT: { actions: 'beat' },
        DIRTY_EXIT: { actions: 'forgetAndConverge' },
        TICK: { actions: 'tick' },
        SCALE: { actions: 'scale' },
        RELOAD: { target: 'reloading', actions: 'startGeneration' },
        STOP: { target: 'stopping', actions: 'stopEverything' },
      },
    },
    // A new generation boots beside the serving one, which takes every call until it is all ready.
    reloading: {
      always: { guard: 'generationReady', target: 'running', actions: 'completeGeneration' },
      on: {
        DIRTY_READY: { actions: 'markReady' },
        DIRTY_BEAT: { actions: 'beat' },
        DIRTY_EXIT: [
          { guard: 'newGenerationBootFailed', target: 'running', actions: 'abandonGeneration' },
          { actions: 'forgetAndConverge' },
        ],
        TICK: { actions: 'tick' },
        SCALE: { actions: 'scale' },
        RELOAD: { target: 'reloading', reenter: true, actions: 'startGeneration' },
        STOP: { target: 'stopping', actions: 'stopEverything' },
      },
    },
    // Every dirty worker drains (or is told to quit); SIGKILL past the deadline.
    stopping: {
      always: { guard: 'allGone', target: 'stopped' },
      on: {
        DIRTY_READY: { actions: 'markReady' },
        DIRTY_BEAT: { actions: 'beat' },
        DIRTY_EXIT: { actions: 'forget' },
        TICK: { actions: 'stoppingTick' },
        // QUIT or INT after a graceful stop: the deadline comes sooner.
        STOP: { actions: 'stopEverything' },
      },
    },
    stopped: { type: 'final', entry: 'stopped' },
  },
})
