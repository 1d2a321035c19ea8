// Graph-generated path tests of the master statechart.
//
// The paths come from scripts/master-paths.ts (shared with the inspector's
// playground, which steps through the same ones): xstate/graph's shortest
// path to every state found, under an abstraction of the context that the
// replay here checks is faithful. Each path is followed by every event
// explored from its end state (so every edge of the explored graph, self-loops
// included, ends some path). Each is replayed on a real
// actor (`createActor`), recording through `inspect` which state nodes were
// entered and which transitions were taken (`@xstate.microstep` events carry
// them), and checking on the way what the emitted commands may and may not be.
// The test then fails, naming them, if any state node of the machine or any
// transition (each `on` alternative, guarded or not, and each `always`) was
// never exercised.
import { isDeepStrictEqual } from 'node:util'
import { describe, expect, test } from 'vitest'
import { createActor, type AnyActorRef } from 'xstate'
import { masterMachine, type MasterCommand, type MasterEvent, type MasterInput } from '../machines/master.ts'
import {
  capped,
  eventsFrom,
  explorationName,
  explorations,
  explore,
  fixedEvents,
  idEvents,
  pathEvents,
  preExecEvents,
  reexecEvents,
  serialize,
  settings,
  settingsReadEvents,
  type Exploration,
  type Snapshot,
} from '../scripts/master-paths.ts'
import { stateNodes, transitions } from '../scripts/diagrams.ts'
import { Coverage } from './helpers/coverage.ts'
import { hup } from './helpers/master-actor.ts'

// ---------------------------------------------------------------------------
// Coverage

const allNodes = stateNodes(masterMachine)
const allTransitions = transitions(masterMachine)

// ---------------------------------------------------------------------------
// What the emitted commands may be

/** What a run has emitted so far: the checks depend on history. */
class History {
  spawned = new Set<number>()
  killed = new Set<number>()
  stoppedGraceful = new Set<number>()
  stoppedQuick = new Set<number>()
  ready = 0
  exited = false
  clone(): History {
    const h = new History()
    h.spawned = new Set(this.spawned)
    h.killed = new Set(this.killed)
    h.stoppedGraceful = new Set(this.stoppedGraceful)
    h.stoppedQuick = new Set(this.stoppedQuick)
    h.ready = this.ready
    h.exited = this.exited
    return h
  }
}

const isLive = (status: string) => status === 'booting' || status === 'running'

/** Checks one step (before → event → after, with what it emitted); returns what is wrong. */
function checkStep(
  h: History,
  before: Snapshot,
  event: MasterEvent,
  after: Snapshot,
  commands: MasterCommand[],
): string[] {
  const problems: string[] = []
  const bad = (why: string) =>
    problems.push(`${why} (event ${JSON.stringify(event)}, commands ${JSON.stringify(commands)})`)
  const known = new Map([...before.context.workers, ...after.context.workers].map((w) => [w.id, w]))
  const afterById = new Map(after.context.workers.map((w) => [w.id, w]))
  if (h.exited && commands.length > 0) bad('a command after exit')
  // The target as the commands so far have announced it (workersChanged).
  let target = before.context.target
  for (const [i, cmd] of commands.entries()) {
    switch (cmd.type) {
      case 'spawnWorker': {
        if (h.spawned.has(cmd.id) || before.context.workers.some((w) => w.id === cmd.id))
          bad(`spawnWorker ${cmd.id}: not a fresh id`)
        h.spawned.add(cmd.id)
        const w = afterById.get(cmd.id)
        if (!w || w.generation !== cmd.generation)
          bad(`spawnWorker ${cmd.id}: not recorded as a worker of generation ${cmd.generation}`)
        // A worker is started with its generation's settings: the ones in force, or, during a reload, the old generation's.
        const { generation, previousGeneration, settings, previousSettings } = after.context
        const expected =
          cmd.generation === generation
            ? settings
            : cmd.generation === previousGeneration
              ? previousSettings
              : undefined
        if (cmd.settings !== expected)
          bad(`spawnWorker ${cmd.id}: not with the settings of generation ${cmd.generation}`)
        break
      }
      case 'workerExited': {
        const was = before.context.workers.find((w) => w.id === cmd.id)
        if (event.type !== 'WORKER_EXIT' || event.id !== cmd.id) bad(`workerExited ${cmd.id} without its exit`)
        if (!was) bad(`workerExited ${cmd.id}: a worker the master did not know`)
        else if (was.generation !== cmd.generation) bad(`workerExited ${cmd.id}: generation ${cmd.generation}`)
        if (afterById.has(cmd.id)) bad(`workerExited ${cmd.id}: still in the context`)
        break
      }
      case 'workersChanged':
        if (cmd.workers === cmd.previous) bad('workersChanged to the same number')
        if (cmd.previous !== target) bad(`workersChanged from ${cmd.previous}, but the target was ${target}`)
        target = cmd.workers
        break
      case 'reloadStarted':
        if (!after.matches({ active: { running: 'reloading' } })) bad('reloadStarted outside reloading')
        if (event.type === 'SETTINGS_READ' && event.settings && cmd.settings !== event.settings)
          bad('reloadStarted without the settings the HUP re-read')
        break
      case 'reloadCompleted':
        if (!before.matches({ active: { running: 'reloading' } }) || cmd.generation !== before.context.generation)
          bad(`reloadCompleted ${cmd.generation} but on leaving reloading for that generation`)
        break
      case 'reloadAbandoned':
        if (event.type !== 'WORKER_EXIT') bad('reloadAbandoned without an exit')
        if (cmd.generation !== before.context.previousGeneration) bad(`reloadAbandoned back to ${cmd.generation}`)
        if (cmd.settings !== before.context.previousSettings) bad('reloadAbandoned without the old settings')
        break
      case 'stopWorker': {
        if (!known.has(cmd.id)) bad(`stopWorker ${cmd.id}: unknown id`)
        if (h.killed.has(cmd.id)) bad(`stopWorker ${cmd.id}: already killed`)
        const seen = cmd.mode === 'graceful' ? h.stoppedGraceful : h.stoppedQuick
        if (seen.has(cmd.id)) bad(`stopWorker ${cmd.id} ${cmd.mode}: sent twice`)
        if (cmd.mode === 'graceful' && h.stoppedQuick.has(cmd.id)) bad(`stopWorker ${cmd.id}: graceful after quick`)
        seen.add(cmd.id)
        const w = afterById.get(cmd.id)
        if (w && w.status !== 'stopping') bad(`stopWorker ${cmd.id}: left in status ${w.status}`)
        break
      }
      case 'killWorker':
      case 'abortWorker': {
        if (!known.has(cmd.id)) bad(`${cmd.type} ${cmd.id}: unknown id`)
        if (h.killed.has(cmd.id)) bad(`${cmd.type} ${cmd.id}: killed twice`)
        h.killed.add(cmd.id)
        const w = afterById.get(cmd.id)
        if (w && w.status !== 'killed') bad(`${cmd.type} ${cmd.id}: left in status ${w.status}`)
        const was = before.context.workers.find((x) => x.id === cmd.id)
        if (cmd.type === 'abortWorker' && was && !isLive(was.status)) bad(`abortWorker ${cmd.id}: was ${was.status}`)
        if (cmd.type === 'killWorker' && was && was.status !== 'stopping')
          bad(`killWorker ${cmd.id}: was ${was.status}`)
        break
      }
      case 'ready':
        h.ready++
        if (h.ready > 1) bad('ready announced twice')
        if (!before.matches({ active: 'booting' })) bad('ready announced outside booting')
        if (cmd.workers < target) bad(`ready with ${cmd.workers} of ${target} workers`)
        break
      case 'reloadRefused':
        if (event.type !== 'SETTINGS_READ' || event.refused === undefined || !before.matches('active'))
          bad('reloadRefused but on refused settings while active')
        if (after.context.settingsReads !== before.context.settingsReads - 1) bad('reloadRefused but still owed')
        if (!isDeepStrictEqual(before.value, after.value) || after.context.reloadQueued !== before.context.reloadQueued)
          bad('reloadRefused but a reload started or was queued')
        break
      case 'readSettings':
        if (event.type !== 'HUP' || !before.matches('active')) bad('readSettings but on a HUP while active')
        if (after.context.settingsReads !== before.context.settingsReads + 1) bad('readSettings not counted as owed')
        break
      case 'preExec':
        if (!after.matches({ active: { reexecing: 'preExec' } })) bad('preExec without entering reexecing')
        if (before.matches({ active: 'reexecing' })) bad('preExec while a re-exec is in flight')
        break
      case 'reexec':
        if (!after.matches({ active: { reexecing: 'starting' } }) && !after.matches('draining'))
          bad('reexec without entering reexecing.starting')
        if (!before.matches({ active: { reexecing: 'preExec' } })) bad('reexec before the preExec hook ran')
        break
      case 'restorePidfile':
        if (before.context.childMaster === 'none') bad('restorePidfile with no new master')
        if (after.context.childMaster !== 'none') bad('restorePidfile, but the new master is still counted')
        break
      case 'exit':
        h.exited = true
        if (i !== commands.length - 1) bad('exit is not the last command')
        if (after.status !== 'done') bad('exit without reaching dead')
        if (cmd.code !== after.context.exitCode) bad(`exit ${cmd.code} but exitCode is ${after.context.exitCode}`)
        if (![0, 3, 4].includes(cmd.code)) bad(`exit code ${cmd.code}`)
        break
      case 'promoteSpare': {
        // A spare of the current generation (waiting, or ready with this very event) takes an empty serving place.
        const was = before.context.workers.find((w) => w.id === cmd.id)
        const w = afterById.get(cmd.id)
        if (was?.role !== 'spare' || !isLive(was.status)) bad(`promoteSpare ${cmd.id}: not a live spare`)
        if (w?.role !== 'serving' || w.status !== 'booting') bad(`promoteSpare ${cmd.id}: not serving (booting) after`)
        if (w && w.generation !== after.context.generation) bad(`promoteSpare ${cmd.id}: of an old generation`)
        break
      }
      case 'reopenLogs':
      case 'log':
        break
      default:
        // The shell carries out the commands it knows (src/master/main.ts): anything else would be lost.
        bad(`unknown command ${JSON.stringify(cmd)}`)
    }
  }
  if (target !== after.context.target) bad(`target ${after.context.target}, announced ${target}`)
  if (after.status === 'done') {
    if (!commands.some((c) => c.type === 'exit') && before.status !== 'done') bad('dead without exit')
    if (after.context.workers.length > 0) bad(`dead with workers ${JSON.stringify(after.context.workers)}`)
  }
  if (after.context.target < 1) bad(`target ${after.context.target}`)
  const delta = after.context.generation - after.context.previousGeneration
  if (delta !== 0 && delta !== 1)
    bad(`generation ${after.context.generation} vs previous ${after.context.previousGeneration}`)
  if (before.matches('draining') && after.matches('active')) bad('back to active from draining')
  if (before.matches({ draining: 'quick' }) && after.matches({ draining: 'graceful' }))
    bad('back to graceful from quick')
  return problems
}

// ---------------------------------------------------------------------------
// Replay

interface Runner {
  actor: AnyActorRef
  commands: MasterCommand[]
}

function start(coverage: Coverage<typeof masterMachine>, input: MasterInput, snapshot?: unknown): Runner {
  const commands: MasterCommand[] = []
  const actor = createActor(
    masterMachine,
    snapshot ? { input, snapshot: snapshot as never, inspect: coverage.inspect } : { input, inspect: coverage.inspect },
  )
  actor.on('*', (cmd: MasterCommand) => commands.push(cmd))
  actor.start()
  coverage.visit(actor.getSnapshot().value)
  return { actor, commands }
}

function step(r: Runner, h: History, event: MasterEvent): string[] {
  const before = r.actor.getSnapshot() as Snapshot
  r.commands.length = 0
  r.actor.send(event)
  const after = r.actor.getSnapshot() as Snapshot
  return checkStep(h, before, event, after, [...r.commands])
}

interface Result {
  paths: number
  edges: number
  problems: string[]
}

/** Replays every generated path for one input; returns what went wrong. */
function replayAll(x: Exploration, coverage: Coverage<typeof masterMachine>): Result {
  const { input } = x
  const paths = explore(x)
  const problems: string[] = []
  let edges = 0
  for (const path of paths) {
    const h = new History()
    const r = start(coverage, input)
    // The initial state's entry spawns the first workers.
    for (const cmd of r.commands) if (cmd.type === 'spawnWorker') h.spawned.add(cmd.id)
    const events = pathEvents(path)
    for (const event of events) {
      const p = step(r, h, event)
      if (p.length) problems.push(`after ${JSON.stringify(events)}: ${p.join('; ')}`)
    }
    const end = r.actor.getSnapshot() as Snapshot
    if (serialize(end) !== serialize(path.state)) {
      problems.push(
        `replaying ${JSON.stringify(events)} reached ${serialize(end)}, the traversal said ${serialize(path.state)}`,
      )
    }
    if (capped(x)(end) || end.status === 'done') continue
    // One more step with every explored event, from a copy of this state.
    const persisted = r.actor.getPersistedSnapshot()
    for (const event of eventsFrom(end)) {
      edges++
      const fork = start(coverage, input, persisted)
      const p = step(fork, h.clone(), event)
      if (p.length) problems.push(`after ${JSON.stringify([...events, event])}: ${p.join('; ')}`)
      fork.actor.stop()
    }
    r.actor.stop()
  }
  return { paths: paths.length, edges, problems }
}

// ---------------------------------------------------------------------------

describe('master machine: graph-generated paths', () => {
  const coverage = new Coverage(masterMachine)
  const results = new Map<string, Result>()

  for (const x of explorations) {
    const name = explorationName(x)
    // Thousands of paths replayed event by event: CPU-bound, so on a busy machine it takes a while.
    test(`every path is sound (${name})`, { timeout: 300_000 }, () => {
      const result = replayAll(x, coverage)
      results.set(name, result)
      expect(result.paths).toBeGreaterThan(10)
      expect(result.problems.slice(0, 10)).toEqual([])
    })
  }

  test('every event type the machine handles is explored', () => {
    const explored = new Set(
      [
        ...fixedEvents,
        ...idEvents(1),
        ...settingsReadEvents,
        ...preExecEvents,
        ...Object.values(reexecEvents).flat(),
        { type: 'TICK' },
      ].map((e) => e.type),
    )
    const handled = new Set(allTransitions.map((t) => t.event).filter((e) => e !== 'always'))
    expect([...handled].filter((e) => !explored.has(e))).toEqual([])
  })

  test('every state node is visited', () => {
    expect(results.size).toBe(explorations.length)
    const missing = allNodes.map((n) => n.id).filter((id) => !coverage.nodes.has(id))
    expect(missing, `state nodes never visited: ${missing.join(', ')}`).toEqual([])
  })

  test('every transition is taken', () => {
    expect(results.size).toBe(explorations.length)
    const missing = allTransitions.map((t) => t.key).filter((k) => !coverage.transitions.has(k))
    expect(missing, `transitions never taken:\n  ${missing.join('\n  ')}`).toEqual([])
  })
})

// ---------------------------------------------------------------------------
// Found by test/master-model.test.ts, kept here as plain sequences.

describe('master machine: an abandoned reload leaves the old generation at the target', () => {
  // After a reload is abandoned (a new-generation worker exited 3 or 4 while
  // booting) the master is in running.steady with no back-off pending, so the
  // old generation should number `target` live workers. abandonGeneration
  // does not converge, so it is off until the next TICK, which then spawns
  // (or stops) workers of the old generation.
  const input: MasterInput = { settings: settings(1) }

  function drive(events: MasterEvent[]) {
    const actor = createActor(masterMachine, { input })
    actor.start()
    for (const e of events) actor.send(e)
    const s = actor.getSnapshot()
    const live = s.context.workers.filter((w) => w.generation === s.context.generation && isLive(w.status)).length
    return {
      value: s.value,
      idle: s.matches({ active: { running: 'idle' } }),
      live,
      target: s.context.target,
      backoff: s.context.respawnAt > s.context.now,
    }
  }
  const failedBoot = (id: number): MasterEvent => ({ type: 'WORKER_EXIT', id, code: 3, signal: null })

  test('TTIN during the reload', () => {
    // 1 serves; HUP starts 2 (generation 1); TTIN starts 3; 2 refuses to boot.
    const r = drive([{ type: 'WORKER_READY', id: 1 }, ...hup(), { type: 'TTIN' }, failedBoot(2)])
    expect(r).toMatchObject({ value: { active: { running: 'steady' } }, backoff: false })
    expect(r.live).toBe(r.target)
  })

  test('a HUP whose re-read settings change the number of workers', () => {
    const r = drive([{ type: 'WORKER_READY', id: 1 }, ...hup(settings(2)), failedBoot(2)])
    expect(r).toMatchObject({ value: { active: { running: 'steady' } }, backoff: false })
    expect(r.live).toBe(r.target)
  })

  test('a HUP after WINCH (no old workers left to fall back on)', () => {
    const r = drive([{ type: 'WORKER_READY', id: 1 }, { type: 'WINCH', fromTerminal: false }, ...hup(), failedBoot(2)])
    // Steady with nobody serving and nothing started: it should either go
    // back to idle or start the old generation again.
    expect(r.idle || r.live === r.target, `${JSON.stringify(r)}`).toBe(true)
  })
})

describe('master machine: an abandoned reload puts back the settings it came with', () => {
  // spec/lifecycle.md: the settings of a reload whose new generation cannot
  // boot are not trusted. The old generation serves on, and the workers
  // started after the abandon get its settings, timeouts included.
  test('the number of workers and both timeouts', () => {
    const old = { workers: 2, timeout: 30, gracefulTimeout: 30 }
    const rejected = { workers: 3, timeout: 5, gracefulTimeout: 2 }
    const commands: MasterCommand[] = []
    const actor = createActor(masterMachine, { input: { settings: old } })
    actor.on('*', (cmd: MasterCommand) => commands.push(cmd))
    actor.start()
    for (const id of [1, 2]) actor.send({ type: 'WORKER_READY', id })
    for (const event of hup(rejected)) actor.send(event)
    const spawned = commands.filter((c) => c.type === 'spawnWorker')
    expect(spawned.slice(2).map((c) => [c.id, c.generation, c.settings])).toEqual([
      [3, 1, rejected],
      [4, 1, rejected],
      [5, 1, rejected],
    ])
    commands.length = 0
    actor.send({ type: 'WORKER_EXIT', id: 3, code: 3, signal: null })
    expect(actor.getSnapshot().context).toMatchObject({ generation: 0, target: 2, settings: old })
    expect(commands).toContainEqual({ type: 'reloadAbandoned', generation: 0, settings: old })
    expect(commands).toContainEqual({ type: 'workersChanged', workers: 2, previous: 3 })
    // A worker of the old generation dies; its replacement gets the old settings and the old timeout.
    commands.length = 0
    actor.send({ type: 'WORKER_EXIT', id: 1, code: 1, signal: null })
    actor.send({ type: 'TICK', now: 10_000 })
    const replacement = commands.find((c) => c.type === 'spawnWorker')
    expect(replacement).toMatchObject({ generation: 0, settings: old })
    const record = actor.getSnapshot().context.workers.find((w) => w.id === replacement?.id)
    expect(record?.timeoutMs).toBe(30_000)
    // A graceful stop gives the old grace period, not the rejected one.
    actor.send({ type: 'TERM' })
    const { now, workers } = actor.getSnapshot().context
    expect(workers.filter((w) => w.status === 'stopping' && w.generation === 0).map((w) => w.deadline - now)).toContain(
      30_000,
    )
    actor.stop()
  })
})
