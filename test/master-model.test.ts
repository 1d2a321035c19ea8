// Model-based tests of the master statechart with fast-check: random
// sequences of what the shell can send (signals, worker reports for workers
// the master knows and for ids it does not, the clock moving on, the new
// master of a USR2 reporting) run against a real actor, with a small model of
// what must hold beside it (test/helpers/master-model.ts). Every invariant is
// checked after every event; a failure prints the exact events that led to it.
import { fc, test } from '@fast-check/vitest'
import { describe, expect, it } from 'vitest'
import { Coverage } from './helpers/coverage.ts'
import { distribution, replayParams, replaying, sequenceLength } from './helpers/fc-replay.ts'
import { type Intent, type Recording, Sim, sendQuietly, type WorkerPick } from './helpers/master-model.ts'
import { masterMachine, type MasterInput, type Signal } from '../machines/master.ts'

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
    'settings refused during a reload in flight',
    'a new master fails to start after a rollback',
    'a signal during a hand-over',
    'a spare takes over',
    'a crash storm outlasts the spares',
  ].map((name) => [name, 0]),
)
const recording: Recording = {
  coverage,
  tookPath: (name: string) => void deepPaths.set(name, (deepPaths.get(name) ?? 0) + 1),
}

// ---------------------------------------------------------------------------
// What the shell may do next, before it is bound to the actor's state: which
// worker a report concerns is picked among those the master knows when the
// step runs (or an id it does not know).

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
  { weight: 1, arbitrary: fc.constant({ kind: 'settingsRefused' as const }) },
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
  // A second HUP during a reload, its settings refused: the reload in flight goes on, none is queued.
  fc.constant<Intent[]>([
    { kind: 'allReady' },
    { kind: 'hup' },
    { kind: 'settingsRead', settings: undefined },
    { kind: 'hup' },
    { kind: 'settingsRefused' },
    { kind: 'allReady' },
  ]),
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

describe('master machine: model-based', () => {
  test.prop([inputArb, intentsArb(sequenceLength(150))], replayParams(400))(
    'invariants hold after every event of any sequence',
    (input, intents) => {
      const sim = new Sim(input, recording)
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
      const sim = new Sim(input, recording, { convergence: false })
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
