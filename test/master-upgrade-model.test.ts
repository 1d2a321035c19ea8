// The upgrade protocol as a model run: random interleavings of USR2, WINCH,
// HUP, QUIT/TERM/INT and worker events against the real master machine,
// with the new master and the pidfile simulated the way the shell carries out
// the machine's commands. After every step the pidfile must tell the truth:
// PIDFILE names a live master that serves (or nobody while a new master
// boots), PIDFILE.2 names the old master only while a new one exists, and no
// two masters both think the pidfile is theirs.
import { fc, test } from '@fast-check/vitest'
import { createActor } from 'xstate'
import { masterMachine, type MasterCommand, type MasterEvent, type Signal } from '../machines/master.ts'
import { replayParams } from './helpers/fc-replay.ts'

type Who = 'old' | 'new'

interface World {
  actor: ReturnType<typeof createActor<typeof masterMachine>>
  child: 'none' | 'starting' | 'ready' | 'dead'
  /** The machine asked for the preExec hook and the shell has not answered yet. */
  preExecOwed: boolean
  oldAlive: boolean
  pidfile: Who | undefined
  aside: Who | undefined
  /** Workers the machine asked to stop and that have not exited yet. */
  stopping: Set<number>
  booting: Set<number>
  now: number
  log: string[]
}

function makeWorld(upgrade: 'manual' | 'auto'): World {
  const actor = createActor(masterMachine, {
    input: { settings: { workers: 2, timeout: 0, gracefulTimeout: 30 }, upgrade },
  })
  const world: World = {
    actor,
    child: 'none',
    preExecOwed: false,
    oldAlive: true,
    pidfile: undefined,
    aside: undefined,
    stopping: new Set(),
    booting: new Set(),
    now: 0,
    log: [],
  }
  actor.on('*', (c) => carryOut(world, c as MasterCommand))
  actor.start()
  return world
}

// What src/master/main.ts and src/master/pidfile.ts do with each command.
function carryOut(w: World, c: MasterCommand): void {
  switch (c.type) {
    case 'spawnWorker':
      w.booting.add(c.id)
      break
    case 'stopWorker':
    case 'killWorker':
    case 'abortWorker':
      w.booting.delete(c.id)
      w.stopping.add(c.id)
      break
    case 'ready':
      w.pidfile = 'old'
      break
    case 'preExec':
      w.preExecOwed = true
      break
    case 'reexec':
      if (w.pidfile === 'old') {
        w.aside = 'old'
        w.pidfile = undefined
      }
      w.child = 'starting'
      break
    case 'restorePidfile':
      if (w.aside === 'old') {
        w.pidfile = 'old'
        w.aside = undefined
      }
      break
    case 'exit':
      w.oldAlive = false
      if (w.pidfile === 'old') w.pidfile = undefined
      if (w.aside === 'old') w.aside = undefined
      break
  }
}

const send = (w: World, e: MasterEvent) => {
  if (!w.oldAlive) return
  w.log.push(JSON.stringify(e))
  w.actor.send(e)
}

type Step =
  | { kind: 'signal'; signal: Signal }
  | { kind: 'workerReady' }
  | { kind: 'workerExit' }
  | { kind: 'tick'; ms: number }
  | { kind: 'childReady' }
  | { kind: 'childDies' }
  | { kind: 'preExec'; failed: boolean }

function apply(w: World, step: Step): void {
  switch (step.kind) {
    case 'signal':
      return send(w, step.signal === 'WINCH' ? { type: 'WINCH', fromTerminal: false } : { type: step.signal })
    case 'workerReady': {
      const [id] = w.booting
      if (id !== undefined) {
        w.booting.delete(id)
        send(w, { type: 'WORKER_READY', id })
      }
      return
    }
    case 'workerExit': {
      const [id] = w.stopping
      if (id !== undefined) {
        w.stopping.delete(id)
        send(w, { type: 'WORKER_EXIT', id, code: 0, signal: null })
      }
      return
    }
    case 'tick':
      w.now += step.ms
      return send(w, { type: 'TICK', now: w.now })
    case 'preExec':
      if (!w.preExecOwed) return
      w.preExecOwed = false
      return send(w, step.failed ? { type: 'PRE_EXEC_FAILED', reason: 'preExec threw' } : { type: 'PRE_EXEC_DONE' })
    case 'childReady':
      if (w.child !== 'starting') return
      // The new master writes PIDFILE once it serves, then tells its parent.
      w.child = 'ready'
      w.pidfile = 'new'
      return send(w, { type: 'REEXEC_READY' })
    case 'childDies':
      if (w.child !== 'starting' && w.child !== 'ready') return
      w.child = 'dead'
      // It removes PIDFILE only if the file holds its own pid.
      if (w.pidfile === 'new') w.pidfile = undefined
      return send(w, { type: 'REEXEC_EXIT', code: 1, signal: null })
  }
}

const stepArb: fc.Arbitrary<Step> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc
      .constantFrom<Signal>('USR2', 'WINCH', 'HUP', 'QUIT', 'TERM', 'INT', 'TTIN', 'TTOU')
      .map((signal) => ({ kind: 'signal' as const, signal })),
  },
  { weight: 4, arbitrary: fc.constant({ kind: 'workerReady' as const }) },
  { weight: 3, arbitrary: fc.constant({ kind: 'workerExit' as const }) },
  { weight: 1, arbitrary: fc.integer({ min: 1, max: 40_000 }).map((ms) => ({ kind: 'tick' as const, ms })) },
  { weight: 2, arbitrary: fc.constant({ kind: 'childReady' as const }) },
  { weight: 2, arbitrary: fc.constant({ kind: 'childDies' as const }) },
  // The preExec hook mostly succeeds: a failed one ends the USR2 before anything changed.
  { weight: 3, arbitrary: fc.boolean().map((failed) => ({ kind: 'preExec' as const, failed })) },
)

function checkPidfile(w: World): void {
  const childAlive = w.child === 'starting' || w.child === 'ready'
  const context = () => `pidfile=${w.pidfile} aside=${w.aside} child=${w.child} old=${w.oldAlive}\n${w.log.join('\n')}`
  // PIDFILE never names a dead master.
  if (w.pidfile === 'old' && !w.oldAlive) throw new Error(`PIDFILE names the dead old master\n${context()}`)
  if (w.pidfile === 'new' && w.child !== 'ready')
    throw new Error(`PIDFILE names a new master that is not serving\n${context()}`)
  // PIDFILE.2 exists only while a new master does, and names the old one.
  if (w.aside !== undefined && (w.aside !== 'old' || !childAlive || !w.oldAlive))
    throw new Error(`stale PIDFILE.2\n${context()}`)
  // With no new master, a serving old master is named by PIDFILE.
  const snapshot = w.actor.getSnapshot()
  if (w.oldAlive && !childAlive && snapshot.matches({ active: 'running' }) && w.pidfile !== 'old') {
    throw new Error(`the old master is in charge but PIDFILE does not name it\n${context()}`)
  }
  // The machine's view of the new master agrees with the world's.
  const view = snapshot.context.childMaster
  if (w.oldAlive && !snapshot.matches('draining') && view !== 'none' && !childAlive) {
    throw new Error(`the old master believes a dead new master is ${view}\n${context()}`)
  }
}

test.prop(
  [fc.constantFrom<'manual' | 'auto'>('manual', 'auto'), fc.array(stepArb, { minLength: 1, maxLength: 80 })],
  replayParams(400),
)(
  'the pidfile always names the master in charge through any interleaving of the upgrade protocol',
  (upgrade, steps) => {
    const w = makeWorld(upgrade)
    for (const step of steps) {
      apply(w, step)
      checkPidfile(w)
    }
    // Finish: the new master either serves or is gone; the old one is told to
    // QUIT; every worker exits. Exactly one master, or none, remains, and the
    // pidfile names it.
    apply(w, { kind: 'preExec', failed: false })
    apply(w, { kind: 'childReady' })
    send(w, { type: 'QUIT' })
    for (let i = 0; i < 20 && w.oldAlive; i++) {
      for (const id of [...w.booting, ...w.stopping]) send(w, { type: 'WORKER_EXIT', id, code: 0, signal: null })
      w.booting.clear()
      w.stopping.clear()
      apply(w, { kind: 'tick', ms: 60_000 })
    }
    checkPidfile(w)
    if (w.oldAlive) throw new Error(`the old master did not stop\n${w.log.join('\n')}`)
    if (w.child === 'ready' && w.pidfile !== 'new')
      throw new Error(`the new master is the only master but PIDFILE=${w.pidfile}`)
    if (w.child !== 'ready' && w.pidfile !== undefined) throw new Error(`no master is left but PIDFILE=${w.pidfile}`)
  },
)
