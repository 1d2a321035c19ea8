// The accept gate (src/worker/accept-gate.ts): when a worker under
// --worker-connections or --balance-slack stops and starts accepting. Its
// transitions one by one, then random runs against a model of what the
// shell holds (are the handles listening, which copies are in hand or on
// their way) checking what the shell relies on. worker-limits.test.ts and
// worker-balance.test.ts run the same gate in real workers.
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { replayParams } from './helpers/fc-replay.ts'
import {
  type AcceptEffect,
  type AcceptEvent,
  type AcceptGate,
  type AcceptGateSettings,
  startGate,
  stepGate,
} from '../src/worker/accept-gate.ts'

const settings = (over: Partial<AcceptGateSettings> = {}): AcceptGateSettings => ({
  maxConnections: 2,
  balanceSlack: 0,
  shared: 1,
  ...over,
})

/** Runs events from the start; the gate reached and every effect, in order. */
function run(s: AcceptGateSettings, events: AcceptEvent[]): { gate: AcceptGate; effects: AcceptEffect[] } {
  const first = startGate(s)
  let gate = first.gate
  const effects = [...first.effects]
  for (const event of events) {
    const step = stepGate(gate, event)
    gate = step.gate
    effects.push(...step.effects)
  }
  return { gate, effects }
}

const types = (effects: readonly AcceptEffect[]) => effects.filter((e) => e.type !== 'log').map((e) => e.type)
const connection = { type: 'connection' } as const
const close = { type: 'close' } as const
const copy = (index: number, present = true) => ({ type: 'copy', index, present }) as const

describe('the accept gate, step by step', () => {
  it('pauses at the limit: closes its handles and asks for a copy of each shared listener', () => {
    const s = settings({ shared: 2 })
    const before = run(s, [connection]).gate
    expect(before.phase).toBe('accepting')
    const step = stepGate(before, connection)
    expect(step.gate.phase).toBe('paused')
    expect(types(step.effects)).toEqual(['closeHandles', 'askCopy', 'askCopy'])
    expect(step.effects).toContainEqual({
      type: 'log',
      level: 'debug',
      message: 'Worker holds 2 connections (--worker-connections 2); not accepting',
    })
  })

  it('below the limit before the copies came: resuming, asking nothing twice; the last copy resumes it', () => {
    const s = settings({ shared: 2 })
    const paused = run(s, [connection, connection]).gate
    const closed = stepGate(paused, close)
    expect(closed.gate.phase).toBe('resuming')
    expect(closed.effects).toEqual([])
    const one = stepGate(closed.gate, copy(0))
    expect(one.gate.phase).toBe('resuming')
    expect(types(one.effects)).toEqual(['keepCopy'])
    const both = stepGate(one.gate, copy(1))
    expect(both.gate.phase).toBe('accepting')
    // Listens on the copies, then asks for the next ones at once, to have them in hand at the next pause.
    expect(types(both.effects)).toEqual(['keepCopy', 'listenOnSpares', 'askCopy', 'askCopy'])
  })

  it('a lower balanced cap while resuming: paused again, and its copy does not resume it until it is below the cap', () => {
    const s = settings({ shared: 1, balanceSlack: 1 })
    const resuming = stepGate(run(s, [connection, connection]).gate, close).gate
    expect(resuming).toMatchObject({ phase: 'resuming', open: 1 })
    // Another worker joins with no connections: the cap falls to 1, which this worker holds.
    const capped = stepGate(resuming, { type: 'balance', others: 0, most: 0, workers: 2 }).gate
    expect(capped).toMatchObject({ phase: 'paused', open: 1, limit: 1 })
    const copied = stepGate(capped, copy(0))
    expect(copied.gate).toMatchObject({ phase: 'paused', spares: [true] })
    expect(types(copied.effects)).toEqual(['keepCopy'])
    expect(stepGate(copied.gate, close).gate.phase).toBe('accepting')
  })

  it('with the copies in hand, the first close resumes at once', () => {
    const paused = run(settings(), [connection, connection, copy(0)]).gate
    expect(paused).toMatchObject({ phase: 'paused', spares: [true] })
    const step = stepGate(paused, close)
    expect(step.gate).toMatchObject({ phase: 'accepting', spares: [false], asked: [true] })
    expect(types(step.effects)).toEqual(['listenOnSpares', 'askCopy'])
  })

  it('stops for good: spares closed, copies that come later closed, connections change nothing', () => {
    const { gate } = run(settings(), [connection, connection, copy(0), { type: 'stop' }])
    expect(gate.phase).toBe('stopped')
    expect(types(stepGate(run(settings(), [connection, connection, copy(0)]).gate, { type: 'stop' }).effects)).toEqual([
      'dropSpares',
    ])
    expect(types(stepGate(gate, copy(0)).effects)).toEqual(['dropCopy'])
    expect(stepGate(gate, close).gate.phase).toBe('stopped')
    expect(stepGate(stepGate(gate, connection).gate, connection).effects).toEqual([])
    expect(stepGate(gate, { type: 'stop' }).effects).toEqual([])
  })

  it('a copy the master could not send retires the worker; one not needed is closed', () => {
    const paused = run(settings(), [connection, connection]).gate
    expect(stepGate(paused, copy(0, false)).effects).toEqual([
      { type: 'retire', reason: 'the master could not send a copy of listener 0' },
    ])
    const inHand = stepGate(paused, copy(0)).gate
    expect(types(stepGate(inHand, copy(0)).effects)).toEqual(['dropCopy'])
    expect(types(stepGate(inHand, copy(5)).effects)).toEqual(['dropCopy'])
  })

  it('a failed listen on a copy says why and retires the worker', () => {
    const step = stepGate(run(settings(), []).gate, { type: 'listenFailed', message: 'EBADF' })
    expect(step.effects).toEqual([
      { type: 'log', level: 'warning', message: 'Worker could not accept again: EBADF' },
      { type: 'retire', reason: 'could not resume accepting: EBADF' },
    ])
  })

  it('only --reuse-port listeners: counts, never pauses', () => {
    const { gate, effects } = run(settings({ shared: 0, maxConnections: 1 }), [connection, connection, connection])
    expect(gate).toMatchObject({ phase: 'accepting', open: 3 })
    expect(effects).toEqual([])
  })

  it('balancing: reports at start, at a pause and on the timer when changed, at their peak; pauses at its cap', () => {
    const s = settings({ maxConnections: Number.POSITIVE_INFINITY, balanceSlack: 1 })
    const first = startGate(s)
    expect(first.effects).toEqual([{ type: 'report', open: 0, state: 'accepting' }])
    // Alone: no cap.
    let gate = run(s, [connection, connection, connection]).gate
    expect(gate.phase).toBe('accepting')
    // Three others holding 1 each: the cap is max(⌊3 / 3 + 1⌋, 1) = 2, and this one holds 3.
    const balanced = stepGate(gate, { type: 'balance', others: 3, most: 1, workers: 4 })
    expect(balanced.gate.limit).toBe(2)
    expect(balanced.effects).toEqual([
      { type: 'log', level: 'debug', message: 'Balancing connections across 4 workers (--balance-slack 1)' },
    ])
    gate = stepGate(balanced.gate, close).gate
    gate = stepGate(gate, close).gate
    gate = stepGate(gate, connection).gate
    expect(gate.phase).toBe('paused')
    // Paused at 2, one closed (the copy is not there yet): the timer reports the peak since the pause's
    // report, 2, not the 1 held now; the next tick the 1, and then nothing while it stays the same.
    const timer = stepGate(stepGate(gate, close).gate, { type: 'report' })
    expect(timer.gate.phase).toBe('resuming')
    expect(timer.effects).toEqual([{ type: 'report', open: 2, state: 'paused' }])
    const next = stepGate(timer.gate, { type: 'report' })
    expect(next.effects).toEqual([{ type: 'report', open: 1, state: 'paused' }])
    expect(stepGate(next.gate, { type: 'report' }).effects).toEqual([])
    // A larger share for this worker: it resumes (after the copy comes).
    const raised = stepGate(stepGate(gate, copy(0)).gate, { type: 'balance', others: 30, most: 10, workers: 4 })
    expect(raised.gate.phase).toBe('accepting')
    expect(stepGate(raised.gate, { type: 'stop' }).effects).toContainEqual({
      type: 'report',
      open: 2,
      state: 'leaving',
    })
  })
})

// ---------------------------------------------------------------------------
// Random runs against a model of the shell.

/** What the shell holds, as the effects left it. */
interface World {
  listening: boolean
  /** Copies the shell keeps, per listener. */
  spares: boolean[]
  /** Copies asked for and not yet delivered. */
  inFlight: Set<number>
  /** A copy delivered and not yet kept or dropped. */
  arrived: boolean
}

type Action =
  | { readonly kind: 'connect' }
  | { readonly kind: 'close' }
  | { readonly kind: 'deliver'; readonly pick: number; readonly present: boolean }
  | { readonly kind: 'stray'; readonly index: number }
  | { readonly kind: 'balance'; readonly others: number; readonly most: number; readonly workers: number }
  | { readonly kind: 'report' }
  | { readonly kind: 'stop' }

const action: fc.Arbitrary<Action> = fc.oneof(
  { weight: 6, arbitrary: fc.constant({ kind: 'connect' } as const) },
  { weight: 5, arbitrary: fc.constant({ kind: 'close' } as const) },
  {
    weight: 4,
    arbitrary: fc.record({ kind: fc.constant('deliver' as const), pick: fc.nat(), present: fc.boolean() }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('stray' as const), index: fc.integer({ min: 0, max: 4 }) }) },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('balance' as const),
      others: fc.nat({ max: 40 }),
      most: fc.nat({ max: 15 }),
      workers: fc.integer({ min: 1, max: 6 }),
    }),
  },
  { weight: 2, arbitrary: fc.constant({ kind: 'report' } as const) },
  { weight: 1, arbitrary: fc.constant({ kind: 'stop' } as const) },
)

const gateSettings: fc.Arbitrary<AcceptGateSettings> = fc.record({
  maxConnections: fc.oneof(fc.integer({ min: 1, max: 6 }), fc.constant(Number.POSITIVE_INFINITY)),
  balanceSlack: fc.integer({ min: 0, max: 2 }),
  shared: fc.integer({ min: 0, max: 3 }),
})

/** Carries out effects on the world, failing on any the shell could not carry out. */
function apply(world: World, effects: readonly AcceptEffect[], stopped: boolean): void {
  for (const effect of effects) {
    if (stopped) expect(['dropCopy', 'dropSpares', 'report', 'retire', 'log']).toContain(effect.type)
    switch (effect.type) {
      case 'closeHandles':
        expect(world.listening).toBe(true)
        world.listening = false
        break
      case 'listenOnSpares':
        // The shell listens on every spare: each must be in hand.
        expect(world.listening).toBe(false)
        expect(world.spares.every(Boolean)).toBe(true)
        world.spares = world.spares.map(() => false)
        world.listening = true
        break
      case 'askCopy':
        // Never a second request for a copy in hand or on its way.
        expect(world.spares[effect.index]).toBe(false)
        expect(world.inFlight.has(effect.index)).toBe(false)
        world.inFlight.add(effect.index)
        break
      case 'keepCopy':
        expect(world.arrived).toBe(true)
        expect(world.spares[effect.index]).toBe(false)
        world.spares[effect.index] = true
        world.arrived = false
        break
      case 'dropCopy':
        expect(world.arrived).toBe(true)
        world.arrived = false
        break
      case 'dropSpares':
        world.spares = world.spares.map(() => false)
        break
      case 'report':
        expect(effect.open).toBeGreaterThanOrEqual(0)
        break
      case 'retire':
      case 'log':
        break
    }
  }
  // Every copy that came was kept or closed: no handle leaks.
  expect(world.arrived).toBe(false)
}

function checkInvariants(gate: AcceptGate, world: World): void {
  expect(gate.open).toBeGreaterThanOrEqual(0)
  expect(gate.spares).toEqual(world.spares)
  if (gate.phase === 'stopped') return
  // The phase says what the handles are doing.
  expect(world.listening).toBe(gate.phase === 'accepting')
  // Paused only while holding its limit.
  if (gate.phase === 'paused') expect(gate.open).toBeGreaterThanOrEqual(gate.limit)
  // Resuming only while a copy is missing, and each missing one is on its way.
  if (gate.phase === 'resuming') {
    expect(gate.open).toBeLessThan(gate.limit)
    const missing = gate.spares.flatMap((spare, index) => (spare ? [] : [index]))
    expect(missing.length).toBeGreaterThan(0)
    for (const index of missing) expect(world.inFlight.has(index)).toBe(true)
  }
  if (gate.settings.shared === 0) expect(gate.phase).toBe('accepting')
}

describe('the accept gate, random runs', () => {
  it('keeps what the shell relies on, and accepts again once its connections end and its copies come', () => {
    fc.assert(
      fc.property(gateSettings, fc.array(action, { maxLength: 300, size: 'max' }), (s, actions) => {
        const first = startGate(s)
        let gate = first.gate
        const world: World = {
          listening: true,
          spares: gate.spares.map(() => false),
          inFlight: new Set(),
          arrived: false,
        }
        const step = (event: AcceptEvent) => {
          const wasStopped = gate.phase === 'stopped'
          const next = stepGate(gate, event)
          apply(world, next.effects, wasStopped)
          gate = next.gate
          // A retiring worker drains at once, which stops the gate (createWorkerLimits).
          if (next.effects.some((e) => e.type === 'retire')) step({ type: 'stop' })
          checkInvariants(gate, world)
        }
        apply(world, first.effects, false)
        for (const a of actions) {
          switch (a.kind) {
            case 'connect':
              // A worker that stopped listening takes no new connection.
              if (world.listening || s.shared === 0) step(connection)
              break
            case 'close':
              if (gate.open > 0) step(close)
              break
            case 'deliver': {
              const waiting = [...world.inFlight]
              if (waiting.length === 0) break
              const index = waiting[a.pick % waiting.length]!
              world.inFlight.delete(index)
              world.arrived = a.present
              step(copy(index, a.present))
              break
            }
            case 'stray':
              // A copy that comes when none is owed (a reply after the worker resumed, a bad index).
              if (world.inFlight.has(a.index)) break
              world.arrived = true
              step(copy(a.index))
              break
            case 'balance':
              step({ type: 'balance', others: a.others, most: a.most, workers: a.workers })
              break
            case 'report':
              step({ type: 'report' })
              break
            case 'stop':
              step({ type: 'stop' })
              break
          }
        }
        // Liveness: every connection ends and every copy comes; unless it stopped, it accepts.
        while (gate.open > 0) step(close)
        for (const index of [...world.inFlight]) {
          world.inFlight.delete(index)
          world.arrived = true
          step(copy(index))
        }
        if (gate.phase !== 'stopped') expect(gate.phase).toBe('accepting')
      }),
      replayParams(300),
    )
  })
})
