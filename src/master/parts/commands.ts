// Carries out what the chart decides: each command it emits, as it emits
// it, by the part that holds what the command touches. Nothing here decides.
import * as Deferred from 'effect/Deferred'
import * as Effect from 'effect/Effect'
import * as Layer from 'effect/Layer'
import * as Queue from 'effect/Queue'
import * as Stream from 'effect/Stream'
import { reopenLogFiles } from '../../logging/log-file.ts'
import { notifyParentReady } from '../reexec.ts'
import { logWorkerExit } from '../worker-pool.ts'
import { Chart } from './chart.ts'
import { MasterConfig } from './config.ts'
import { Control } from './control.ts'
import { Hooks } from './hooks.ts'
import { Listeners } from './listeners.ts'
import { Pidfile } from './pidfile.ts'
import { Dirty } from './dirty.ts'
import { Pool } from './pool.ts'

export const commandsLayer = Layer.effectDiscard(
  Effect.gen(function* () {
    const { log, adopt, inForce, reloadSettings } = yield* MasterConfig
    const chart = yield* Chart
    const hooks = yield* Hooks
    const pool = yield* Pool
    const dirty = yield* Dirty
    const pidfile = yield* Pidfile
    const listeners = yield* Listeners
    const control = yield* Control
    // The chart's readSettings: the config file is imported one HUP at a
    // time, in the order asked, off the event stream; each answer is an
    // event (the chart may be stopping by then, and drops it).
    const settingsReads = yield* Queue.unbounded<void>()
    yield* Stream.fromQueue(settingsReads).pipe(
      Stream.mapEffect(() =>
        reloadSettings ? Effect.promise(() => reloadSettings(inForce(), log)) : Effect.succeed({}),
      ),
      Stream.runForEach((read) => Effect.sync(() => chart.emit({ type: 'SETTINGS_READ', ...read }))),
      Effect.forkScoped,
    )

    chart.onCommand((command) => {
      switch (command.type) {
        case 'spawnWorker': {
          const { id, generation, settings, role } = command
          return hooks.spawning({ id, generation }, () => pool.spawnWorker(id, generation, settings, role))
        }
        case 'promoteSpare':
          return hooks.inOrder(() => pool.promoteSpare(command.id))
        case 'stopWorker':
          return hooks.inOrder(() => pool.stopWorker(command.id, command.mode))
        case 'killWorker':
          return hooks.inOrder(() => pool.killWorker(command.id))
        case 'abortWorker':
          return hooks.inOrder(() => void pool.abortWorker(command.id, hooks.aborting()))
        case 'workerExited': {
          const { id, pid, generation, code, signal, cause } = command
          logWorkerExit(log, command)
          return hooks.workerExited({ id, pid, generation, exitCode: code, signal, cause })
        }
        case 'workersChanged':
          return hooks.workersChanged(command.workers, command.previous)
        case 'reloadStarted':
          adopt(command.settings)
          dirty.reload(command.settings)
          return hooks.reloadStarted()
        case 'reloadAbandoned':
          return adopt(command.settings)
        case 'reloadCompleted':
        case 'reloadRefused':
          // Only watched: `corral reload` waits for it (src/master/control-commands.ts).
          return
        case 'reopenLogs':
          log.info('Reopening log files')
          reopenLogFiles()
          return pool.broadcast({ t: 'reopen' })
        case 'readSettings':
          return void Queue.offerUnsafe(settingsReads, undefined)
        case 'preExec':
          // The chart's reexecing.preExec waits for the hook's outcome (src/master/server-hooks.ts).
          return hooks.preExec((failure) =>
            chart.emit(
              failure === undefined ? { type: 'PRE_EXEC_DONE' } : { type: 'PRE_EXEC_FAILED', reason: failure },
            ),
          )
        case 'reexec': {
          pidfile.moveAside()
          control.socket.moveAside()
          const newMaster = listeners.handOver(chart.emit)
          return log.info(`Re-exec: started a new master with pid ${newMaster.pid}`)
        }
        case 'restorePidfile':
          pidfile.restore()
          return control.socket.restore()
        case 'ready':
          // The pidfile names a master that serves: an upgrade (or -D) waiting
          // for it knows the new master is ready.
          pidfile.write()
          log.info(`Ready: ${command.workers} worker(s) serving`)
          return notifyParentReady()
        case 'log':
          return log[command.level](command.message)
        case 'exit':
          return void Deferred.doneUnsafe(chart.exitCode, Effect.succeed(command.code))
      }
    })
  }),
)
