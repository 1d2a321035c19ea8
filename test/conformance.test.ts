// Conformance of the real master to its pure model (spec/model-fidelity.md,
// "Conformance"). Random sequences of what an operator and the world do to a
// running corral (signals, `corral ctl` commands, kill -9 of a worker, a
// broken app put on disk and put back, USR2 that succeeds or fails, QUIT to
// the new master) are applied to a real corral; after each step, once the
// master has taken the step and settled, what its control socket, its
// pidfile and its exit code say must equal what the pure machine predicts for
// the same steps in an idealised world (test/helpers/master-predictor.ts).
// The predictor plans the whole sequence before the real master starts: it
// never sees the real one.
import { fc, test } from '@fast-check/vitest'
import {
  copyFileSync,
  existsSync,
  lstatSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { isDeepStrictEqual } from 'node:util'
import { afterAll, describe, expect } from 'vitest'
import { answer } from './helpers/control.ts'
import { fixture, freePort, isAlive, killAll, startCorral, track, type Corral } from './helpers/corral.ts'
import { replayParams } from './helpers/fc-replay.ts'
import {
  isSettled,
  MasterPredictor,
  type Observed,
  type Owner,
  type Scenario,
  type Step,
} from './helpers/master-predictor.ts'

// `npm test` runs a few sequences; `npm run conformance` sets CONFORMANCE_RUNS (FC_RUNS is a factor on top).
const RUNS = Number(process.env.CONFORMANCE_RUNS ?? 5)
/** Hang guards, not thresholds: a step of a busy two-core machine may take seconds (a reload boots workers). */
const STEP_TIMEOUT_MS = 120_000
const SEQUENCE_TIMEOUT_MS = 600_000
/** More workers than this are not asked for: processes cost, and nothing new happens at five. */
const MAX_TARGET = 4
/** CONFORMANCE_TRACE=1: each step and what was seen after it, as it happens (for a run that seems stuck). */
const trace = process.env.CONFORMANCE_TRACE ? (line: string) => console.error(`conformance: ${line}`) : () => {}

// ---------------------------------------------------------------------------
// The sequences: intents first, bound to a worker id by the predictor.

type Intent =
  | Exclude<Step, { kind: 'workerKill' | 'kill9' | 'stop' }>
  | { readonly kind: 'workerKill' | 'kill9'; readonly pick: number }

const intentArb: fc.Arbitrary<Intent> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant('signal' as const),
      signal: fc.constantFrom('TTIN' as const, 'TTOU' as const, 'HUP' as const, 'USR2' as const),
    }),
  },
  { weight: 1, arbitrary: fc.constant({ kind: 'signal' as const, signal: 'WINCH' as const }) },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant('workerAdd' as const), count: fc.integer({ min: 1, max: 2 }) }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant('workerRemove' as const), count: fc.integer({ min: 1, max: 2 }) }),
  },
  { weight: 1, arbitrary: fc.constant({ kind: 'reload' as const }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('workerKill' as const), pick: fc.nat(7) }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('kill9' as const), pick: fc.nat(7) }) },
  { weight: 2, arbitrary: fc.constant({ kind: 'breakApp' as const }) },
  { weight: 2, arbitrary: fc.constant({ kind: 'fixApp' as const }) },
  { weight: 2, arbitrary: fc.constant({ kind: 'breakConfig' as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'fixConfig' as const }) },
  { weight: 2, arbitrary: fc.constant({ kind: 'quitNewMaster' as const }) },
)

const scenarioArb: fc.Arbitrary<Scenario> = fc.record({
  // The timeouts are the defaults, given on the command line to be sure.
  settings: fc.record({
    workers: fc.integer({ min: 1, max: 3 }),
    timeout: fc.constant(30),
    gracefulTimeout: fc.constant(30),
    // Spares (spec/standby.md) now and then: a kill -9 or worker kill is then a take-over.
    standby: fc.constantFrom(0, 0, 1),
  }),
  // Mostly manual: with auto, a USR2 that succeeds ends the sequence (the master under test hands over and exits).
  upgrade: fc.oneof({ weight: 3, arbitrary: fc.constant('manual' as const) }, fc.constant('auto' as const)),
})

const stopArb = fc.constantFrom('QUIT' as const, 'TERM' as const, 'INT' as const)

interface Plan {
  readonly steps: readonly Step[]
  /** What the chart did on the way, by the predictor: for the figures. */
  readonly outcomes: Readonly<Record<string, number>>
  /** What the master looks like at the start (index 0) and after each step. */
  readonly expected: readonly Observed[]
}

/**
 * The steps the intents become, and what follows each, from the predictor
 * alone. An intent that cannot be taken is dropped: nothing to kill, the app
 * already broken or fixed, no new master to quit, too many workers, or one
 * that would never settle (with the app broken, a worker replaced while
 * others serve crash-loops for ever: the real master would too, and there
 * would be no settled state to compare).
 */
function plan(scenario: Scenario, intents: readonly Intent[], stop: 'QUIT' | 'TERM' | 'INT'): Plan {
  const steps: Step[] = []
  let predictor = new MasterPredictor(scenario)
  if (!predictor.settled) throw new Error('the predictor does not settle at start')
  const expected: Observed[] = [predictor.observe()]
  const take = (step: Step): void => {
    const trial = MasterPredictor.after(scenario, steps)
    if (!trial.apply(step)) return
    steps.push(step)
    expected.push(trial.observe())
    predictor = trial
  }
  for (const intent of intents) {
    if (predictor.dead) break
    const step = bind(intent, predictor)
    if (step) take(step)
  }
  if (!predictor.dead) take({ kind: 'stop', signal: stop })
  return { steps, expected, outcomes: predictor.outcomes }
}

function bind(intent: Intent, p: MasterPredictor): Step | undefined {
  const now = p.observe()
  const target = 'target' in now ? now.target : 0
  switch (intent.kind) {
    case 'workerKill':
    case 'kill9': {
      const ids = p.workerIds()
      const id = ids[intent.pick % Math.max(1, ids.length)]
      return id === undefined ? undefined : { kind: intent.kind, id }
    }
    case 'signal':
      if (intent.signal === 'TTIN' && target >= MAX_TARGET) return undefined
      // A new master started over an invalid config file exits at once (2): not modelled here.
      return intent.signal === 'USR2' && p.brokenConfig ? undefined : intent
    case 'workerAdd':
      return target + intent.count > MAX_TARGET ? undefined : intent
    case 'breakApp':
      return p.broken ? undefined : intent
    case 'fixApp':
      return p.broken ? intent : undefined
    case 'breakConfig':
      return p.brokenConfig ? undefined : intent
    case 'fixConfig':
      return p.brokenConfig ? intent : undefined
    case 'quitNewMaster':
      return p.newMasterServing ? intent : undefined
    default:
      return intent
  }
}

// ---------------------------------------------------------------------------
// The real side.

const BROKEN_APP = "throw new Error('broken deploy: thrown at import')\n"
const GOOD_CONFIG = 'export default {}\n'
const BROKEN_CONFIG = 'export default { wrokers: 1 }\n'

interface Real {
  readonly corral: Corral
  readonly dir: string
  readonly app: string
  /** Its -c file: empty, or invalid (breakConfig), so that a HUP's read is refused. */
  readonly config: string
  configBroken: boolean
  readonly pidfile: string
  readonly socket: string
  /** The new master of the last USR2, once its pid is logged. */
  newMaster: number | undefined
  /** Where the master under test answers now: PATH, or PATH.2 while a new master has PATH. */
  at: string
  /** Every worker pid seen: none may outlive the master. */
  readonly workerPids: Set<number>
  /** --standby: the spares a settled master keeps. */
  readonly standby: number
  exit: { code: number | null; signal: NodeJS.Signals | null } | undefined
}

async function startReal(scenario: Scenario): Promise<Real> {
  const dir = mkdtempSync(join(tmpdir(), 'corral-conformance-'))
  const app = join(dir, 'app.ts')
  copyFileSync(fixture('app-pid.ts'), app)
  const config = join(dir, 'corral.config.mjs')
  writeFileSync(config, GOOD_CONFIG)
  const pidfile = join(dir, 'corral.pid')
  const socket = join(dir, 'corral.ctl')
  const { workers, timeout, gracefulTimeout, standby = 0 } = scenario.settings
  // startCorral starts masters in a session of their own, with no terminal:
  // no resize can have sent a WINCH, so the master acts on it.
  const corral = startCorral([
    ...['-w', String(workers), '-t', String(timeout), '--graceful-timeout', String(gracefulTimeout)],
    ...['--standby', String(standby)],
    ...['-b', `127.0.0.1:${await freePort()}`, '-p', pidfile, '--control-socket', socket],
    ...['--upgrade', scenario.upgrade, '-c', config, app],
  ])
  const real: Real = {
    corral,
    dir,
    app,
    config,
    configBroken: false,
    pidfile,
    socket,
    newMaster: undefined,
    at: socket,
    workerPids: new Set(),
    standby,
    exit: undefined,
  }
  void corral.exited.then((exit) => {
    real.exit = exit
  })
  return real
}

function ownerOfPid(real: Real, pid: number | undefined): Owner {
  if (pid === undefined) return 'none'
  return pid === real.corral.pid ? 'old' : pid === real.newMaster ? 'new' : `pid ${pid}`
}

function pidfileOwner(real: Real, path: string): Owner {
  let text: string
  try {
    text = readFileSync(path, 'utf8').trim()
  } catch {
    // Not there, or removed while read (a master exiting): nobody's.
    return 'none'
  }
  return /^\d+$/.test(text) ? ownerOfPid(real, Number(text)) : `pid ${text}`
}

type All = Awaited<ReturnType<typeof answer<'all'>>>

/** Who answers on a control socket path, and what the master under test said if it is that one. */
async function socketOwner(real: Real, path: string): Promise<{ owner: Owner; all?: All }> {
  if (!existsSync(path)) return { owner: 'none' }
  try {
    const all = await answer(path, ['show', 'all'], 'all')
    return { owner: ownerOfPid(real, all.machine.pid), all }
  } catch {
    return existsSync(path) ? { owner: 'stale' } : { owner: 'none' }
  }
}

/** The four files as they are now: the pidfiles' text, the socket files' inodes. */
function stamp(real: Real): string {
  const text = (path: string) => {
    try {
      return readFileSync(path, 'utf8')
    } catch {
      return null
    }
  }
  const inode = (path: string) => {
    try {
      return lstatSync(path).ino
    } catch {
      return null
    }
  }
  const { pidfile, socket } = real
  return JSON.stringify([text(pidfile), text(`${pidfile}.2`), inode(socket), inode(`${socket}.2`)])
}

/**
 * The real master's observable: through its control socket, its pidfile and
 * its exit. The master moves its files in the same step as the chart's state
 * changes, but reading them takes several steps here (a connection made to
 * PATH.2 just before it is renamed back is answered after): a reading during
 * which a file moved is no reading, and is taken again.
 */
async function observeReal(real: Real): Promise<Observed | undefined> {
  const exited = real.exit
  const before = stamp(real)
  const [main, aside] = [await socketOwner(real, real.socket), await socketOwner(real, `${real.socket}.2`)]
  const files = {
    pidfile: pidfileOwner(real, real.pidfile),
    pidfileAside: pidfileOwner(real, `${real.pidfile}.2`),
    socket: main.owner,
    socketAside: aside.owner,
  }
  if (stamp(real) !== before) return undefined
  if (exited) return { state: 'dead', exitCode: exited.code ?? -1, files }
  const ours = main.owner === 'old' ? main : aside.owner === 'old' ? aside : undefined
  // Alive but answering nowhere: between two readings of a move; read again.
  if (!ours?.all) return undefined
  real.at = ours === main ? real.socket : `${real.socket}.2`
  const { machine, workers } = ours.all
  for (const w of workers) if (w.pid !== null) real.workerPids.add(w.pid)
  return {
    state: machine.state,
    target: machine.target,
    generation: machine.generation,
    workers: [...workers]
      .sort((a, b) => a.id - b.id)
      .map((w) => ({ id: w.id, generation: w.generation, state: w.state })),
    reloadQueued: machine.reloadQueued,
    childMaster: machine.childMaster,
    files,
  }
}

async function pidOfWorker(real: Real, id: number): Promise<number> {
  const { workers } = await answer(real.at, ['show', 'workers'], 'workers')
  const pid = workers.find((w) => w.id === id)?.pid
  if (pid == null) throw new Error(`no worker ${id} to act on (workers: ${JSON.stringify(workers)})`)
  return pid
}

/** The lines the master under test logged since `from` that say `what` (a regex source). */
function logged(real: Real, from: number, what: string): RegExpMatchArray[] {
  const line = new RegExp(`\\[${real.corral.pid}\\] \\[[A-Z]+\\] [^\\n]*?(?:${what})`, 'g')
  return [...real.corral.log().slice(from).matchAll(line)]
}

/**
 * How to tell that the master has taken a step: the line the chart logs when
 * it handles that event (read before the state, so the state read is the one
 * after it), or something of the state itself (a kill -9: the worker gone).
 * Waiting for that first, then for a settled state, keeps a step that changes
 * nothing (TTOU at one worker) from being compared before it even arrived, or
 * overtaking the next one.
 */
interface Taken {
  readonly logged?: () => boolean
  readonly state?: (o: Observed) => boolean
}

/** Applies a step to the real master; resolves with how to tell it was taken. */
async function applyReal(real: Real, step: Step): Promise<Taken> {
  const from = real.corral.log().length
  const saw = (what: string, count = 1) => ({ logged: () => logged(real, from, what).length >= count })
  // A HUP's reload starts now or once the one in flight is done; with the config file invalid, none does.
  const reloadLine = real.configBroken ? 'Reload not started' : 'Reloading: starting worker generation'
  switch (step.kind) {
    case 'signal': {
      real.corral.signal(`SIG${step.signal}`)
      if (step.signal === 'TTIN') return saw('Number of workers: \\d+ -> \\d+')
      if (step.signal === 'TTOU') return saw('Number of workers: \\d+ -> \\d+|TTOU ignored')
      if (step.signal === 'HUP') return saw(reloadLine)
      if (step.signal === 'WINCH') return saw('WINCH: stopping all workers|WINCH ignored')
      return {
        logged: () => {
          const [started] = logged(real, from, 'Re-exec: started a new master with pid (\\d+)')
          if (started) {
            real.newMaster = Number(started[1])
            track(real.newMaster)
          }
          return started !== undefined || saw('USR2 refused').logged()
        },
      }
    }
    case 'workerAdd':
      await answer(real.at, ['worker', 'add', String(step.count)], 'sent')
      return saw('Number of workers: \\d+ -> \\d+', step.count)
    case 'workerRemove':
      await answer(real.at, ['worker', 'remove', String(step.count)], 'sent')
      return saw('Number of workers: \\d+ -> \\d+|worker remove ignored')
    case 'reload':
      await answer(real.at, ['reload'], 'sent')
      return saw(reloadLine)
    case 'workerKill':
      await answer(real.at, ['worker', 'kill', String(await pidOfWorker(real, step.id))], 'sent')
      return saw(`Worker ${step.id} stopped by corral ctl`)
    case 'kill9':
      process.kill(await pidOfWorker(real, step.id), 'SIGKILL')
      return { state: (o) => !('workers' in o) || !o.workers.some((w) => w.id === step.id) }
    case 'breakApp':
      writeFileSync(real.app, BROKEN_APP)
      return {}
    case 'fixApp':
      copyFileSync(fixture('app-pid.ts'), real.app)
      return {}
    case 'breakConfig':
      writeFileSync(real.config, BROKEN_CONFIG)
      real.configBroken = true
      return {}
    case 'fixConfig':
      writeFileSync(real.config, GOOD_CONFIG)
      real.configBroken = false
      return {}
    case 'quitNewMaster':
      if (real.newMaster === undefined) throw new Error('no new master to quit')
      process.kill(real.newMaster, 'SIGQUIT')
      return saw('this master is in charge again')
    case 'stop':
      real.corral.signal(`SIG${step.signal}`)
      return { state: (o) => o.state === 'dead' }
  }
}

/** Polls the real master until it has taken the step and settled; then what it looks like. */
async function settledReal(real: Real, taken: Taken, why: () => string): Promise<Observed> {
  const deadline = Date.now() + STEP_TIMEOUT_MS
  let last: Observed | undefined
  for (;;) {
    const logged = taken.logged?.() ?? true
    const o = await observeReal(real)
    if (o) last = o
    if (o && (o.state === 'dead' || (logged && (taken.state?.(o) ?? true))) && isSettled(o, real.standby)) return o
    if (Date.now() > deadline)
      throw new Error(`${why()}\n  never settled; last seen: ${JSON.stringify(last)}\n${tail(real)}`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

const tail = (real: Real) => `  master log (last 40 lines):\n${real.corral.log().split('\n').slice(-41).join('\n')}`

async function runReal(scenario: Scenario, { steps, expected }: Plan): Promise<void> {
  const real = await startReal(scenario)
  const where = (i: number) =>
    `conformance: step ${i} of ${steps.length} (${i === 0 ? 'start' : JSON.stringify(steps[i - 1])})\n  scenario ${JSON.stringify(scenario)}\n  steps ${JSON.stringify(steps)}`
  try {
    for (let i = 0; i <= steps.length; i++) {
      const taken = i === 0 ? {} : await applyReal(real, steps[i - 1]!)
      trace(`step ${i}: ${i === 0 ? `start ${JSON.stringify(scenario)}` : JSON.stringify(steps[i - 1])}`)
      const seen = await settledReal(real, taken, () => where(i))
      trace(`  seen ${JSON.stringify(seen)}`)
      if (!isDeepStrictEqual(seen, expected[i])) {
        // A second look, a moment later, tells a late change from a lasting one.
        await new Promise((r) => setTimeout(r, 1000))
        const again = await observeReal(real)
        throw new Error(
          `${where(i)}\n  predicted ${JSON.stringify(expected[i])}\n  observed  ${JSON.stringify(seen)}\n  a second later ${JSON.stringify(again)}\n  files ${readdirSync(real.dir).join(' ')}\n${tail(real)}`,
        )
      }
    }
    // Nothing the master started outlives it.
    const orphans = [...real.workerPids].filter(isAlive)
    if (orphans.length > 0) throw new Error(`${where(steps.length)}\n  workers still alive: ${orphans.join(', ')}`)
  } finally {
    await killAll()
    rmSync(real.dir, { recursive: true, force: true })
  }
}

/** What the runs did, said at the end: the figures spec/model-fidelity.md quotes. */
const figures = {
  sequences: 0,
  steps: 0,
  byKind: {} as Record<string, number>,
  outcomes: {} as Record<string, number>,
  startedAt: Date.now(),
}

function count({ steps, outcomes }: Plan): void {
  const add = (into: Record<string, number>, key: string, n = 1) => (into[key] = (into[key] ?? 0) + n)
  figures.sequences++
  figures.steps += steps.length
  for (const s of steps) add(figures.byKind, s.kind === 'signal' ? s.signal : s.kind)
  for (const [key, n] of Object.entries(outcomes)) add(figures.outcomes, key, n)
}

afterAll(() => {
  const seconds = Math.round((Date.now() - figures.startedAt) / 1000)
  console.log(
    `conformance: ${figures.sequences} sequence(s), ${figures.steps} step(s) in ${seconds} s; steps ${JSON.stringify(figures.byKind)}; the chart did ${JSON.stringify(figures.outcomes)}`,
  )
})

describe('the real master conforms to the pure machine', () => {
  // Each run is a real corral taking a dozen steps: seconds to a minute. A
  // failure is not shrunk (endOnFailure): shrinking re-runs real processes
  // dozens of times, and the failure message already names every step, the
  // seed and the path that replays it (FC_SEED, FC_PATH: spec/model-fidelity.md).
  test.prop([scenarioArb, fc.array(intentArb, { minLength: 4, maxLength: 20, size: 'medium' }), stopArb], {
    ...replayParams(RUNS),
    endOnFailure: true,
  })(
    'after every step, the control socket, the pidfile and the exit code say what the machine predicts',
    async (scenario, intents, stop) => {
      const p = plan(scenario, intents, stop)
      await runReal(scenario, p)
      count(p)
      expect(p.expected.at(-1)?.state).toBe('dead')
    },
    SEQUENCE_TIMEOUT_MS * RUNS,
  )
})
