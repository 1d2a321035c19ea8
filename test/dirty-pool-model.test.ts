// Model-based tests of the dirty pool's chart (machines/dirty-pool.ts) with
// fast-check: random sequences of what the shell can send (readiness, beats
// with call ages, exits with any code, the clock, ctl dirty add/remove, HUP,
// stop) against a real actor; every invariant is checked after every event.
import { fc, test } from '@fast-check/vitest'
import { describe, expect, it } from 'vitest'
import { createActor } from 'xstate'
import {
  appsOfSlot,
  DIRTY_MAX_BACKOFF_MS,
  dirtyPoolMachine,
  minimumSlots,
  parseDirtyApp,
  rosterOf,
  type DirtyCommand,
  type DirtyEvent,
  type DirtySettings,
} from '../machines/dirty-pool.ts'
import { Coverage } from './helpers/coverage.ts'

const coverage = new Coverage(dirtyPoolMachine)

const settingsFor = (workers: number, timeout: number): DirtySettings => ({
  dirtyApps: ['model=./model.ts:1', 'render=./render.ts:Renderer:2', 'util=./util.ts'],
  dirtyWorkers: workers,
  dirtyTimeout: timeout,
  dirtyGracefulTimeout: 2,
})

type Intent =
  | { kind: 'ready'; pick: number }
  | { kind: 'beat'; pick: number; age: number }
  | { kind: 'exit'; pick: number; code: number | null; signal: string | null }
  | { kind: 'tick'; ms: number }
  | { kind: 'scale'; by: number }
  | { kind: 'reload'; workers: number; timeout: number }
  | { kind: 'stop'; quick: boolean }

const intent: fc.Arbitrary<Intent> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ kind: fc.constant('ready' as const), pick: fc.nat(20) }) },
  {
    weight: 3,
    arbitrary: fc.record({ kind: fc.constant('beat' as const), pick: fc.nat(20), age: fc.constantFrom(0, 500, 6_000) }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('exit' as const),
      pick: fc.nat(20),
      code: fc.constantFrom(0, 1, 3, null),
      signal: fc.constantFrom(null, 'SIGKILL'),
    }),
  },
  {
    weight: 5,
    arbitrary: fc.record({ kind: fc.constant('tick' as const), ms: fc.constantFrom(100, 1_000, 7_000, 12_000) }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('scale' as const), by: fc.constantFrom(-3, -1, 1, 2) }) },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('reload' as const),
      workers: fc.constantFrom(0, 1, 3),
      timeout: fc.constantFrom(0, 5),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('stop' as const), quick: fc.boolean() }) },
)

function run(intents: readonly Intent[], initial: DirtySettings) {
  const emitted: DirtyCommand[] = []
  const actor = createActor(coverage.machine, { input: { settings: initial, now: 0 }, inspect: coverage.inspect })
  actor.on('*', (c) => emitted.push(c as DirtyCommand))
  actor.start()
  coverage.visit(actor.getSnapshot().value)
  let now = 0
  /** Every id ever spawned, with what it was spawned to carry. */
  const spawned = new Map<number, Extract<DirtyCommand, { type: 'spawnDirty' }>>()
  const exitedIds = new Set<number>()
  let stopAsked = false
  const check = (event: DirtyEvent | undefined, from: number) => {
    const snap = actor.getSnapshot()
    const ctx = snap.context
    const fresh = emitted.slice(from)
    for (const c of fresh) {
      if (c.type === 'spawnDirty') {
        // Never twice the same id, never while stopping, and each carries what its slot carries.
        expect(spawned.has(c.id)).toBe(false)
        expect(stopAsked).toBe(false)
        expect(c.apps).toEqual(appsOfSlot(c.settings, c.slot))
        spawned.set(c.id, c)
      }
      if (c.type === 'dirtyExited') {
        // Each exit reported once, for a worker that was spawned.
        expect(spawned.has(c.id)).toBe(true)
        expect(exitedIds.has(c.id)).toBe(false)
        exitedIds.add(c.id)
      }
      if (c.type === 'roster')
        for (const id of c.ids) expect(ctx.workers.find((w) => w.id === id)?.status).toBe('ready')
    }
    // One live worker at most per slot and generation.
    const live = ctx.workers.filter((w) => w.status === 'booting' || w.status === 'ready')
    const keys = live.map((w) => `${w.generation}/${w.slot}`)
    expect(new Set(keys).size).toBe(keys.length)
    // Every app keeps enough slots for its count.
    expect(ctx.target).toBeGreaterThanOrEqual(minimumSlots(ctx.settings))
    // Slots past the target are not live in the generation being built.
    for (const w of live) if (w.generation === ctx.generation) expect(w.slot).toBeLessThan(ctx.target)
    // The last roster sent is what HTTP workers may call now.
    const lastRoster = emitted.findLast((c) => c.type === 'roster')
    expect(lastRoster?.type === 'roster' ? lastRoster.ids : []).toEqual(rosterOf(ctx))
    if (snap.value === 'stopping' || snap.value === 'stopped') expect(rosterOf(ctx)).toEqual([])
    // A heartbeat with a call past the timeout gets that worker killed for it.
    if (
      event?.type === 'DIRTY_BEAT' &&
      ctx.settings.dirtyTimeout > 0 &&
      event.oldestCallMs > ctx.settings.dirtyTimeout * 1000
    ) {
      const before = fresh.length
      const target = spawned.get(event.id)
      if (target && !exitedIds.has(event.id) && before > 0)
        expect(fresh).toContainEqual({ type: 'killDirty', id: event.id, cause: 'timeout' })
    }
    // After a tick, running and past the back-off: every slot of the generation being built is filled.
    if (event?.type === 'TICK' && snap.value !== 'stopping' && snap.value !== 'stopped' && ctx.now >= ctx.respawnAt) {
      const slots = new Set(live.filter((w) => w.generation === ctx.generation).map((w) => w.slot))
      for (let s = 0; s < ctx.target; s++) expect(slots.has(s)).toBe(true)
    }
    expect(ctx.respawnAt - ctx.now).toBeLessThanOrEqual(DIRTY_MAX_BACKOFF_MS)
    if (snap.value === 'stopped') {
      expect(ctx.workers).toEqual([])
      expect(emitted.filter((c) => c.type === 'stopped')).toHaveLength(1)
    }
  }
  check(undefined, 0)
  for (const step of intents) {
    const workers = actor.getSnapshot().context.workers
    const pick = (n: number) => workers[n % Math.max(1, workers.length)]?.id ?? 999
    let event: DirtyEvent
    switch (step.kind) {
      case 'ready':
        event = { type: 'DIRTY_READY', id: pick(step.pick) }
        break
      case 'beat':
        event = { type: 'DIRTY_BEAT', id: pick(step.pick), oldestCallMs: step.age }
        break
      case 'exit':
        event = { type: 'DIRTY_EXIT', id: pick(step.pick), code: step.code, signal: step.signal }
        break
      case 'tick':
        now += step.ms
        event = { type: 'TICK', now }
        break
      case 'scale':
        event = { type: 'SCALE', by: step.by }
        break
      case 'reload':
        event = { type: 'RELOAD', settings: settingsFor(step.workers, step.timeout) }
        break
      case 'stop':
        stopAsked = true
        event = { type: 'STOP', mode: step.quick ? 'quick' : 'graceful' }
        break
    }
    const from = emitted.length
    actor.send(event)
    check(event, from)
    if (actor.getSnapshot().status === 'done') break
  }
  return { actor, emitted }
}

describe('dirty pool chart', () => {
  test.prop([fc.array(intent, { minLength: 1, maxLength: 60 }), fc.constantFrom(0, 2, 4)], { numRuns: 400 })(
    'holds its invariants under any sequence of events',
    (intents, workers) => {
      run(intents, settingsFor(workers, 5))
    },
  )

  test.prop([fc.array(intent, { maxLength: 40 })], { numRuns: 100 })(
    'a stop ends with every worker gone and stopped said once',
    (intents) => {
      const { actor, emitted } = run(intents, settingsFor(2, 5))
      if (actor.getSnapshot().status === 'done') return
      actor.send({ type: 'STOP', mode: 'graceful' })
      // The workers exit (or are killed past the deadline, then exit).
      if (actor.getSnapshot().status !== 'done') actor.send({ type: 'TICK', now: 1e9 })
      for (const w of actor.getSnapshot().context.workers)
        actor.send({ type: 'DIRTY_EXIT', id: w.id, code: null, signal: 'SIGKILL' })
      expect(actor.getSnapshot().value).toBe('stopped')
      expect(emitted.filter((c) => c.type === 'stopped')).toHaveLength(1)
      expect(emitted.findLast((c) => c.type === 'roster')).toMatchObject({ ids: [], draining: true })
    },
  )

  it('reads NAME=MODULE[:EXPORT][:N], and says what is wrong with anything else', () => {
    expect(parseDirtyApp('m=./m.ts')).toEqual({ name: 'm', module: './m.ts', exportName: undefined, count: undefined })
    expect(parseDirtyApp('m=./m.ts:Model')).toMatchObject({ module: './m.ts', exportName: 'Model' })
    expect(parseDirtyApp('m=./m.ts:2')).toMatchObject({ module: './m.ts', exportName: undefined, count: 2 })
    expect(parseDirtyApp('m=pkg/x:Model:3')).toMatchObject({ module: 'pkg/x', exportName: 'Model', count: 3 })
    for (const bad of ['./m.ts', '=./m.ts', 'm=', 'm=./m.ts:a:b:c', 'm=./m.ts:0', 'm=./m.ts::2'])
      expect(parseDirtyApp(bad)).toBeTypeOf('string')
  })

  it('without a --dirty-app the pool is empty: nothing spawned, dirty add ignored', () => {
    const emitted: DirtyCommand[] = []
    const none: DirtySettings = { dirtyApps: [], dirtyWorkers: 3, dirtyTimeout: 5, dirtyGracefulTimeout: 2 }
    const actor = createActor(dirtyPoolMachine, { input: { settings: none } })
    actor.on('*', (c) => emitted.push(c as DirtyCommand))
    actor.start()
    actor.send({ type: 'TICK', now: 1_000 })
    actor.send({ type: 'SCALE', by: 2 })
    expect(actor.getSnapshot().value).toBe('running')
    expect(emitted).toContainEqual({ type: 'log', level: 'info', message: 'dirty add|remove ignored: no --dirty-app' })
    expect(emitted.filter((c) => c.type === 'spawnDirty')).toEqual([])
  })

  it('allocates apps with a count to the first slots, the others to every slot', () => {
    const s = settingsFor(3, 5)
    expect([0, 1, 2].map((slot) => appsOfSlot(s, slot))).toEqual([
      ['model', 'render', 'util'],
      ['render', 'util'],
      ['util'],
    ])
  })

  it('a reload serves the old generation until the new one is all ready, then drains the old', () => {
    const emitted: DirtyCommand[] = []
    const actor = createActor(dirtyPoolMachine, { input: { settings: settingsFor(2, 5) } })
    actor.on('*', (c) => emitted.push(c as DirtyCommand))
    actor.start()
    actor.send({ type: 'DIRTY_READY', id: 1 })
    actor.send({ type: 'DIRTY_READY', id: 2 })
    expect(actor.getSnapshot().value).toBe('running')
    expect(emitted.findLast((c) => c.type === 'roster')).toMatchObject({ ids: [1, 2] })
    actor.send({ type: 'RELOAD', settings: settingsFor(2, 5) })
    actor.send({ type: 'DIRTY_READY', id: 3 })
    expect(emitted.findLast((c) => c.type === 'roster')).toMatchObject({ ids: [1, 2] })
    expect(emitted.filter((c) => c.type === 'stopDirty')).toEqual([])
    actor.send({ type: 'DIRTY_READY', id: 4 })
    expect(emitted.findLast((c) => c.type === 'roster')).toMatchObject({ ids: [3, 4] })
    expect(emitted.filter((c) => c.type === 'stopDirty')).toEqual([
      { type: 'stopDirty', id: 1, mode: 'graceful' },
      { type: 'stopDirty', id: 2, mode: 'graceful' },
    ])
  })

  it('a new generation that cannot boot is abandoned and the old one serves on', () => {
    const emitted: DirtyCommand[] = []
    const actor = createActor(dirtyPoolMachine, { input: { settings: settingsFor(2, 5) } })
    actor.on('*', (c) => emitted.push(c as DirtyCommand))
    actor.start()
    actor.send({ type: 'DIRTY_READY', id: 1 })
    actor.send({ type: 'DIRTY_READY', id: 2 })
    actor.send({ type: 'RELOAD', settings: settingsFor(3, 5) })
    actor.send({ type: 'DIRTY_EXIT', id: 3, code: 3, signal: null })
    expect(actor.getSnapshot().value).toBe('running')
    expect(actor.getSnapshot().context.generation).toBe(0)
    expect(actor.getSnapshot().context.target).toBe(2)
    expect(rosterOf(actor.getSnapshot().context)).toEqual([1, 2])
  })

  it.skipIf(process.env.FC_SEED !== undefined)('the runs take every transition of the chart and every guard', () => {
    console.log(coverage.report('dirty pool model'))
    expect(coverage.missing()).toEqual([])
  })
})
