// The worker statechart: every state node and every transition exercised by
// graph-generated paths (xstate/graph), with the emitted commands checked on
// each path, then random sequences (fast-check) that must take every
// transition and guard, then each transition spelled out as an example.
import { fc, test as propertyTest } from '@fast-check/vitest'
import { describe, expect, it, test } from 'vitest'
import { createActor, type SnapshotFrom } from 'xstate'
import { getShortestPaths } from 'xstate/graph'
import { workerMachine, type WorkerCommand, type WorkerEvent, type WorkerInput } from '../machines/worker.ts'
import { stateNodes, transitions } from '../scripts/diagrams.ts'
import { Coverage } from './helpers/coverage.ts'
import { distribution, replayParams, replaying, sequenceLength } from './helpers/fc-replay.ts'

type Snapshot = SnapshotFrom<typeof workerMachine>

const events: WorkerEvent[] = [
  { type: 'APP_EXPORTED' },
  { type: 'APP_LISTENED', server: 0 },
  { type: 'NOTHING_EXPORTED' },
  { type: 'LISTEN_TIMEOUT', seconds: 30 },
  { type: 'APP_CLOSED' },
  { type: 'LOADED' },
  { type: 'BOOT_FAILED', code: 3, reason: 'could not take up the listeners' },
  { type: 'BOOT_FAILED', code: 4, reason: 'the app threw at import' },
  { type: 'SIGNAL', signal: 'TERM' },
  { type: 'SIGNAL', signal: 'QUIT' },
  { type: 'SIGNAL', signal: 'INT' },
  { type: 'MASTER_GONE' },
  { type: 'REOPEN_LOGS' },
  { type: 'DRAINED' },
  { type: 'RETIRE', cause: 'max-requests', reason: 'max requests: 100' },
  { type: 'CRASHED', reason: 'boom' },
  { type: 'TAKE_OVER' },
]

const allNodes = stateNodes(workerMachine)
const allTransitions = transitions(workerMachine)

interface Run {
  readonly commands: WorkerCommand[]
  readonly end: Snapshot
  /** The code a BOOT_FAILED (3, 4) or CRASHED (1) that ended the worker's life calls for. */
  readonly bootFailure: number | undefined
  /** How many events the worker took before it was dead (or the events ran out). */
  readonly steps: number
  /** Started as a spare (--standby). */
  readonly spare: boolean
  /** A spare: how many commands it had emitted when TAKE_OVER reached it waiting in standby. */
  readonly tookOverAt: number | undefined
}

function run(events: readonly WorkerEvent[], coverage?: Coverage<typeof workerMachine>, spare = false): Run {
  const commands: WorkerCommand[] = []
  const input = { spare }
  const actor = coverage
    ? createActor(coverage.machine, { input, inspect: coverage.inspect })
    : createActor(workerMachine, { input })
  actor.on('*', (cmd: WorkerCommand) => commands.push(cmd))
  actor.start()
  coverage?.visit(actor.getSnapshot().value)
  let bootFailure: number | undefined
  let steps = 0
  let tookOverAt: number | undefined
  for (const e of events) {
    if (actor.getSnapshot().status === 'done') break // a dead worker takes nothing more (checked below)
    const before = actor.getSnapshot().value
    if (e.type === 'TAKE_OVER' && before === 'standby') tookOverAt ??= commands.length
    const booting = before === 'booting' || before === 'awaitingListen' || before === 'starting'
    if (e.type === 'BOOT_FAILED' && booting) bootFailure = e.code
    if (e.type === 'LISTEN_TIMEOUT' && before === 'awaitingListen') bootFailure = 4
    const loading = before === 'booting' || before === 'awaitingListen'
    if (e.type === 'CRASHED') bootFailure = loading ? 4 : 1
    actor.send(e)
    steps++
  }
  return { commands, end: actor.getSnapshot(), bootFailure, steps, spare, tookOverAt }
}

/** What any run's commands must look like. */
function checkCommands(run: Run): string[] {
  const { commands, end, bootFailure } = run
  const problems: string[] = []
  const count = (type: WorkerCommand['type']) => commands.filter((c) => c.type === type).length
  const exits = commands.filter((c) => c.type === 'exit')
  if (commands[0]?.type !== 'boot' || count('boot') !== 1) problems.push('boot is not first, or not once')
  for (const c of commands) if (c.type === 'log' && !/\w{3}/.test(c.message)) problems.push('an empty log line')
  for (const once of ['announceReady', 'announceStandby', 'stopAccepting', 'closeAll', 'retiring'] as const)
    if (count(once) > 1) problems.push(`${once} more than once`)
  if (end.status === 'done') {
    if (exits.length !== 1 || commands.at(-1)?.type !== 'exit') problems.push('dead without exactly one exit, last')
    const code = exits[0]?.type === 'exit' ? exits[0].code : undefined
    const expected = bootFailure ?? 0
    if (code !== expected) problems.push(`exit ${code}, expected ${expected}`)
  } else if (exits.length) problems.push('exit while not dead')
  const ready = commands.findIndex((c) => c.type === 'announceReady')
  const stop = commands.findIndex((c) => c.type === 'stopAccepting')
  if (stop >= 0 && (ready < 0 || stop < ready)) problems.push('stopAccepting before announceReady')
  // A spare never accepts before the master tells it to take over; a serving worker never waits.
  const serve = commands.findIndex((c) => c.type === 'serve')
  if (run.spare && serve >= 0 && (run.tookOverAt === undefined || serve < run.tookOverAt))
    problems.push('a spare served before TAKE_OVER')
  if (!run.spare && count('announceStandby') > 0) problems.push('a serving worker went to standby')
  const standby = commands.findIndex((c) => c.type === 'announceStandby')
  if (run.spare && serve >= 0 && standby < 0) problems.push('a spare served without waiting in standby')
  const retiring = commands.findIndex((c) => c.type === 'retiring')
  if (retiring >= 0 && commands[retiring + 1]?.type !== 'stopAccepting')
    problems.push('retiring not followed by stopAccepting')
  return problems
}

describe('worker machine: graph-generated paths', () => {
  // As a serving worker and as a spare (--standby): only a spare reaches `standby`.
  const paths = [false, true].flatMap((spare) =>
    getShortestPaths(workerMachine, { events, input: { spare } }).map((path) => ({ ...path, spare })),
  )
  const coverage = new Coverage(workerMachine)
  // The shortest path to every state, then each of those with every event
  // appended: every edge of the graph, self-loops included, ends some path.
  const generated = paths.flatMap((p) => {
    const prefix = p.steps.map((s) => s.event).filter((e) => (e.type as string) !== 'xstate.init')
    return [prefix, ...events.map((e) => [...prefix, e])].map((events) => ({ events, spare: p.spare }))
  })

  test('the traversal reaches every state', () => {
    expect(new Set(paths.map((p) => p.state.value))).toEqual(
      new Set(['booting', 'awaitingListen', 'standby', 'starting', 'running', 'draining', 'dead']),
    )
    expect(new Set(paths.filter((p) => !p.spare).map((p) => p.state.value))).not.toContain('standby')
    // dead three times over: exit code 0, 3 and 4 (the default serialization includes the context)
    expect(
      paths
        .filter((p) => !p.spare && p.state.value === 'dead')
        .map((p) => p.state.context.exitCode)
        .sort(),
    ).toEqual([0, 1, 3, 4])
  })

  test('every generated path emits sound commands', () => {
    const problems = generated.flatMap(({ events, spare }) => {
      const p = checkCommands(run(events, coverage, spare))
      return p.length ? [`${spare ? 'spare ' : ''}${JSON.stringify(events)}: ${p.join('; ')}`] : []
    })
    expect(problems).toEqual([])
  })

  test('every state node is visited and every transition taken', () => {
    for (const { events, spare } of generated) run(events, coverage, spare)
    const nodes = allNodes.map((n) => n.id).filter((id) => !coverage.nodes.has(id))
    const missing = allTransitions.map((t) => t.key).filter((k) => !coverage.transitions.has(k))
    expect(nodes, `state nodes never visited: ${nodes.join(', ')}`).toEqual([])
    expect(missing, `transitions never taken:\n  ${missing.join('\n  ')}`).toEqual([])
  })
})

describe('worker machine: model-based', () => {
  const coverage = new Coverage(workerMachine)
  const depths: number[] = []
  // Any sequence of what a worker can be told or find out (events after dead
  // are not sent). What ends a worker is rarer than what it lives through, or
  // most runs would end at the first event: REOPEN_LOGS, and LOADED,
  // DRAINED, TAKE_OVER and APP_EXPORTED where they mean nothing, are the
  // steps a long life is made of.
  const ends = events.filter((e) => !['LOADED', 'REOPEN_LOGS', 'DRAINED', 'TAKE_OVER'].includes(e.type))
  const eventArb = fc.oneof(
    { weight: 4, arbitrary: fc.constant<WorkerEvent>({ type: 'LOADED' }) },
    { weight: 2, arbitrary: fc.constant<WorkerEvent>({ type: 'TAKE_OVER' }) },
    // Loading done, the step into a worker's (or a spare's) serving life.
    { weight: 2, arbitrary: fc.constant<WorkerEvent>({ type: 'APP_EXPORTED' }) },
    { weight: 4, arbitrary: fc.constant<WorkerEvent>({ type: 'REOPEN_LOGS' }) },
    { weight: 2, arbitrary: fc.constant<WorkerEvent>({ type: 'DRAINED' }) },
    { weight: 2, arbitrary: fc.constantFrom(...ends) },
  )
  propertyTest.prop(
    [fc.array(eventArb, { maxLength: sequenceLength(30), size: 'max' }), fc.boolean()],
    replayParams(1000),
  )('any sequence of events emits sound commands, as a serving worker or a spare', (sequence, spare) => {
    const result = run(sequence, coverage, spare)
    depths.push(result.steps)
    expect(checkCommands(result)).toEqual([])
  })

  it.skipIf(replaying)('the runs take every transition of the chart and every guard', () => {
    console.log(`worker model: events per run before the end, ${distribution(depths)}`)
    console.log(coverage.report('worker model'))
    expect(coverage.missing()).toEqual([])
  })
})

describe('worker machine: each transition', () => {
  const up = [{ type: 'APP_EXPORTED' }, { type: 'LOADED' }] as const satisfies WorkerEvent[]
  const served = [{ type: 'boot' }, { type: 'serve', from: 'export' }, { type: 'announceReady' }] as const
  const draining = [...up, { type: 'SIGNAL', signal: 'TERM' }] as const satisfies WorkerEvent[]
  const drained = [...served, { type: 'stopAccepting' }] as const
  const commandsOf = (...events: WorkerEvent[]) => run(events).commands
  const stateAfter = (...events: WorkerEvent[]) => run(events).end.value
  const exit = (code: number): WorkerCommand => ({ type: 'exit', code })
  const gone: WorkerCommand = { type: 'log', level: 'warning', message: 'Master is gone; shutting down' }

  test('booting: boots on entry; APP_EXPORTED → starting, which serves the export; LOADED → running, which announces itself', () => {
    expect(commandsOf()).toEqual([{ type: 'boot' }])
    expect(stateAfter({ type: 'APP_EXPORTED' })).toBe('starting')
    expect(stateAfter({ type: 'APP_EXPORTED' }, { type: 'LOADED' })).toBe('running')
    expect(commandsOf({ type: 'APP_EXPORTED' }, { type: 'LOADED' })).toEqual([
      { type: 'boot' },
      { type: 'serve', from: 'export' },
      { type: 'announceReady' },
    ])
    // LOADED means the listeners are served: not before the app is known.
    expect(stateAfter({ type: 'LOADED' })).toBe('booting')
  })

  test('booting: a server that listens while the module is imported is the app, whatever the module exports', () => {
    const listened: WorkerEvent = { type: 'APP_LISTENED', server: 0 }
    expect(commandsOf(listened, { type: 'APP_EXPORTED' }, { type: 'LOADED' })).toEqual([
      { type: 'boot' },
      { type: 'serve', from: 'server', server: 0 },
      { type: 'announceReady' },
    ])
  })

  test('a later server is left idle, while starting, running or draining; corral serves the first', () => {
    const first: WorkerEvent = { type: 'APP_LISTENED', server: 0 }
    const second: WorkerEvent = { type: 'APP_LISTENED', server: 1 }
    expect(commandsOf(first, second, { type: 'LOADED' }, { type: 'APP_LISTENED', server: 2 })).toEqual([
      { type: 'boot' },
      { type: 'serve', from: 'server', server: 0 },
      { type: 'leaveIdle', server: 1 },
      { type: 'announceReady' },
      { type: 'leaveIdle', server: 2 },
    ])
    expect(commandsOf(...draining, second).at(-1)).toEqual({ type: 'leaveIdle', server: 1 })
  })

  test('booting: NOTHING_EXPORTED → awaitingListen, which waits for listen(): APP_LISTENED serves it, LISTEN_TIMEOUT fails the load (exit 4)', () => {
    const nothing: WorkerEvent = { type: 'NOTHING_EXPORTED' }
    expect(commandsOf(nothing, { type: 'APP_LISTENED', server: 0 })).toEqual([
      { type: 'boot' },
      { type: 'waitForListen' },
      { type: 'serve', from: 'server', server: 0 },
    ])
    const timedOut = commandsOf(nothing, { type: 'LISTEN_TIMEOUT', seconds: 30 })
    expect(timedOut.at(-1)).toEqual(exit(4))
    expect(timedOut.at(-2)).toMatchObject({
      type: 'loadFailed',
      reason: expect.stringMatching(/exports no app and started no server within 30 s/),
    })
  })

  test('booting and awaitingListen: CRASHED (thrown by the import or an async start-up) is a load failure: exit 4, the one-line summary to the master', () => {
    const crashed: WorkerEvent = {
      type: 'CRASHED',
      reason: 'Error: db down\n    at …',
      summary: '/app/main.js:9:11: Error: db down',
    }
    for (const before of [[], [{ type: 'NOTHING_EXPORTED' }]] as WorkerEvent[][]) {
      expect(commandsOf(...before, crashed).slice(-2)).toEqual([
        { type: 'loadFailed', reason: 'App failed to load: /app/main.js:9:11: Error: db down' },
        exit(4),
      ])
    }
  })

  test.each([
    [3, { type: 'log', level: 'error', message: 'nope' }],
    [4, { type: 'loadFailed', reason: 'nope' }],
  ] as const)(
    'booting: BOOT_FAILED %i → dead, exit with that code and the reason logged (a load failure by the master, once)',
    (code, said) => {
      for (const before of [[], [{ type: 'NOTHING_EXPORTED' }], [{ type: 'APP_EXPORTED' }]] as WorkerEvent[][]) {
        expect(commandsOf(...before, { type: 'BOOT_FAILED', code, reason: 'nope' }).slice(-2)).toEqual([
          said,
          exit(code),
        ])
      }
    },
  )

  test('running: APP_CLOSED (the app closed its own server) retires: the master is told, the worker drains', () => {
    expect(stateAfter(...up, { type: 'APP_CLOSED' })).toBe('draining')
    expect(commandsOf(...up, { type: 'APP_CLOSED' })).toEqual([
      ...served,
      { type: 'retiring', cause: 'retired', reason: 'the app closed its server' },
      { type: 'stopAccepting' },
    ])
    expect(commandsOf(...draining, { type: 'APP_CLOSED' })).toEqual([...drained])
  })

  test.each(['TERM', 'QUIT', 'INT'] as const)(
    'booting: SIGNAL %s → dead at once, exit 0 (nothing is served yet)',
    (signal) => {
      expect(commandsOf({ type: 'SIGNAL', signal })).toEqual([{ type: 'boot' }, exit(0)])
    },
  )

  test('booting: MASTER_GONE → dead, exit 0; REOPEN_LOGS and DRAINED are ignored', () => {
    expect(commandsOf({ type: 'MASTER_GONE' })).toEqual([{ type: 'boot' }, gone, exit(0)])
    expect(stateAfter({ type: 'REOPEN_LOGS' }, { type: 'DRAINED' })).toBe('booting')
    expect(commandsOf({ type: 'REOPEN_LOGS' }, { type: 'DRAINED' })).toEqual([{ type: 'boot' }])
  })

  test.each(['TERM', 'QUIT'] as const)('running: SIGNAL %s → draining, which stops the accept', (signal) => {
    expect(stateAfter(...up, { type: 'SIGNAL', signal })).toBe('draining')
    expect(commandsOf(...up, { type: 'SIGNAL', signal })).toEqual([...served, { type: 'stopAccepting' }])
  })

  test('running: SIGNAL INT → dead, closing every connection now, exit 0', () => {
    expect(commandsOf(...up, { type: 'SIGNAL', signal: 'INT' })).toEqual([...served, { type: 'closeAll' }, exit(0)])
  })

  test('running: MASTER_GONE → dead, closing everything, exit 0', () => {
    expect(commandsOf(...up, { type: 'MASTER_GONE' })).toEqual([...served, gone, { type: 'closeAll' }, exit(0)])
  })

  test('running: REOPEN_LOGS reopens, and stays running; LOADED, BOOT_FAILED and DRAINED are ignored', () => {
    const events: WorkerEvent[] = [
      ...up,
      { type: 'REOPEN_LOGS' },
      { type: 'LOADED' },
      { type: 'BOOT_FAILED', code: 4, reason: 'late' },
      { type: 'DRAINED' },
    ]
    expect(stateAfter(...events)).toBe('running')
    expect(commandsOf(...events)).toEqual([...served, { type: 'reopenLogs' }])
  })

  test('draining: DRAINED → dead, exit 0 (nothing left to close)', () => {
    expect(commandsOf(...draining, { type: 'DRAINED' })).toEqual([...drained, exit(0)])
  })

  test.each(['TERM', 'QUIT', 'INT'] as const)(
    'draining: a second signal (%s) is a quick stop: close all, exit 0',
    (signal) => {
      expect(commandsOf(...draining, { type: 'SIGNAL', signal })).toEqual([...drained, { type: 'closeAll' }, exit(0)])
    },
  )

  test('draining: MASTER_GONE → dead, closing everything; REOPEN_LOGS reopens and stays', () => {
    expect(commandsOf(...draining, { type: 'MASTER_GONE' })).toEqual([...drained, gone, { type: 'closeAll' }, exit(0)])
    expect(stateAfter(...draining, { type: 'REOPEN_LOGS' })).toBe('draining')
    expect(commandsOf(...draining, { type: 'REOPEN_LOGS' })).toEqual([...drained, { type: 'reopenLogs' }])
  })

  test('running: RETIRE tells the master (retiring) and drains like a graceful stop', () => {
    const retire: WorkerEvent = { type: 'RETIRE', cause: 'max-requests', reason: 'max requests: 100' }
    expect(stateAfter(...up, retire)).toBe('draining')
    expect(commandsOf(...up, retire, { type: 'DRAINED' })).toEqual([
      ...served,
      { type: 'retiring', cause: 'max-requests', reason: 'max requests: 100' },
      { type: 'stopAccepting' },
      exit(0),
    ])
  })

  test('booting and draining: RETIRE is ignored (nothing served yet; already leaving)', () => {
    const retire: WorkerEvent = { type: 'RETIRE', cause: 'max-memory', reason: 'max memory' }
    expect(stateAfter(retire)).toBe('booting')
    expect(commandsOf(retire)).toEqual([{ type: 'boot' }])
    expect(stateAfter(...draining, retire)).toBe('draining')
    expect(commandsOf(...draining, retire)).toEqual([...drained])
  })

  const crash = (reason: string): WorkerCommand => ({
    type: 'log',
    level: 'error',
    message: `Uncaught exception in worker; exiting: ${reason}`,
  })

  test('starting: CRASHED → dead, exit 1, the reason logged (the app loaded; corral was taking up its listeners)', () => {
    expect(commandsOf({ type: 'APP_EXPORTED' }, { type: 'CRASHED', reason: 'boom' })).toEqual([
      { type: 'boot' },
      { type: 'serve', from: 'export' },
      crash('boom'),
      exit(1),
    ])
  })

  test('running and draining: CRASHED → dead, closing everything, exit 1', () => {
    expect(commandsOf(...up, { type: 'CRASHED', reason: 'boom' })).toEqual([
      ...served,
      crash('boom'),
      { type: 'closeAll' },
      exit(1),
    ])
    expect(commandsOf(...draining, { type: 'CRASHED', reason: 'boom' })).toEqual([
      ...drained,
      crash('boom'),
      { type: 'closeAll' },
      exit(1),
    ])
  })

  test('a spare (--standby): loaded, it waits in standby without serving; TAKE_OVER serves what it loaded', () => {
    const spare = (...events: WorkerEvent[]) => run(events, undefined, true)
    expect(spare({ type: 'APP_EXPORTED' }).end.value).toBe('standby')
    expect(spare({ type: 'APP_EXPORTED' }, { type: 'LOADED' }).commands).toEqual([
      { type: 'boot' },
      { type: 'announceStandby' },
    ])
    expect(spare({ type: 'APP_EXPORTED' }, { type: 'TAKE_OVER' }, { type: 'LOADED' }).commands).toEqual([
      { type: 'boot' },
      { type: 'announceStandby' },
      { type: 'serve', from: 'export' },
      { type: 'announceReady' },
    ])
    // The app's own server, found while loading (during the import or after it), is what it serves once it takes over.
    for (const before of [[], [{ type: 'NOTHING_EXPORTED' }]] as WorkerEvent[][])
      expect(spare(...before, { type: 'APP_LISTENED', server: 0 }, { type: 'TAKE_OVER' }).commands.slice(-1)).toEqual([
        { type: 'serve', from: 'server', server: 0 },
      ])
    // A serving worker ignores TAKE_OVER; a spare takes it only once loaded.
    expect(run([{ type: 'APP_EXPORTED' }, { type: 'TAKE_OVER' }]).end.value).toBe('starting')
    expect(spare({ type: 'TAKE_OVER' }).end.value).toBe('booting')
    // A server that listens while the spare waits is left idle, as in a serving worker: the app was decided.
    expect(spare({ type: 'APP_LISTENED', server: 0 }, { type: 'APP_LISTENED', server: 1 }).commands.slice(-1)).toEqual([
      { type: 'leaveIdle', server: 1 },
    ])
    expect(spare({ type: 'APP_EXPORTED' }, { type: 'APP_LISTENED', server: 0 }).commands.slice(-1)).toEqual([
      { type: 'leaveIdle', server: 0 },
    ])
  })

  test('without --standby (no input, or none of it) a worker serves as soon as it has loaded', () => {
    // The types ask for the input; a JavaScript caller of the exported machine may leave it out.
    const noInput = {} as { input: WorkerInput }
    for (const actor of [createActor(workerMachine, noInput), createActor(workerMachine, { input: {} })]) {
      actor.start()
      actor.send({ type: 'APP_EXPORTED' })
      expect(actor.getSnapshot().value).toBe('starting')
      actor.stop()
    }
  })

  test('standby: any signal or the master going ends it at once (nothing is served), exit 0; a crash exits 1', () => {
    const loaded: WorkerEvent = { type: 'APP_EXPORTED' }
    for (const signal of ['TERM', 'QUIT', 'INT'] as const)
      expect(run([loaded, { type: 'SIGNAL', signal }], undefined, true).commands.slice(-1)).toEqual([exit(0)])
    expect(run([loaded, { type: 'MASTER_GONE' }], undefined, true).commands.slice(-2)).toEqual([gone, exit(0)])
    expect(run([loaded, { type: 'CRASHED', reason: 'boom' }], undefined, true).commands.slice(-1)).toEqual([exit(1)])
    expect(run([loaded, { type: 'REOPEN_LOGS' }], undefined, true).commands.slice(-1)).toEqual([{ type: 'reopenLogs' }])
  })

  test('dead is final: the actor is done and emits nothing more', () => {
    const actor = createActor(workerMachine, { input: {} })
    const commands: WorkerCommand[] = []
    actor.on('*', (c: WorkerCommand) => commands.push(c))
    actor.start()
    actor.send({ type: 'SIGNAL', signal: 'INT' })
    expect(actor.getSnapshot().status).toBe('done')
    const n = commands.length
    const warn = console.warn
    console.warn = () => {} // XState warns about events sent to a stopped actor
    try {
      for (const e of events) actor.send(e)
    } finally {
      console.warn = warn
    }
    expect(commands.length).toBe(n)
  })
})
