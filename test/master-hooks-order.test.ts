// The master's server hooks follow the master machine's commands
// (src/master/server-hooks.ts): here the commands are given by hand and the
// pool's part is a list of what it was asked to do, so the order the hooks
// impose is seen exactly. The same hooks in a real master: test/hooks.test.ts.
import { describe, expect, it } from 'vitest'
import { defaults } from '../src/config/resolve.ts'
import type { Settings } from '../src/config/registry.ts'
import type { Logger } from '../src/logging/log.ts'
import { createMasterHooks } from '../src/master/server-hooks.ts'

const quiet: Logger = {
  debug: () => {},
  info: () => {},
  warning: () => {},
  error: () => {},
  critical: () => {},
  exception: () => {},
}

/** Master hooks over these settings; `done` records what ran, hooks and pool calls alike, in order. */
function hooksWith(hooks: Partial<Settings>) {
  const done: string[] = []
  const settings = { ...defaults(), ...hooks } as Settings
  const master = createMasterHooks({
    settings: () => settings,
    app: 'app.ts',
    name: 'app',
    log: quiet,
    workers: () => [],
  })
  return { master, done }
}

/** A promise and the function that resolves it: what a test waits for. */
function signal(): { happened: Promise<void>; happen: () => void } {
  let happen: () => void = () => {}
  const happened = new Promise<void>((resolve) => (happen = resolve))
  return { happened, happen }
}

describe('master hooks follow the machine’s commands', () => {
  it('without preFork and with nothing queued, a worker is spawned at once, and its stop follows at once', () => {
    const { master, done } = hooksWith({})
    master.spawning({ id: 1, generation: 0 }, () => done.push('spawn 1'))
    master.inOrder(() => done.push('stop 1'))
    expect(done).toEqual(['spawn 1', 'stop 1'])
  })

  it('a spawn that waits for preFork holds back the commands after it, which follow in the machine’s order', async () => {
    const preForkRuns = signal()
    const preForkMayReturn = signal()
    const stopped = signal()
    const { master, done } = hooksWith({
      preFork: (_server, worker) => {
        done.push(`preFork ${worker.id}`)
        preForkRuns.happen()
        return preForkMayReturn.happened
      },
    })
    master.spawning({ id: 1, generation: 0 }, () => done.push('spawn 1'))
    master.inOrder(() => done.push('stop 1'))
    master.inOrder(() => {
      done.push('stop 2')
      stopped.happen()
    })
    await preForkRuns.happened
    expect(done).toEqual(['preFork 1'])
    preForkMayReturn.happen()
    await stopped.happened
    expect(done).toEqual(['preFork 1', 'spawn 1', 'stop 1', 'stop 2'])
  })

  it('a reload: nworkersChanged, then onReload, then each preFork of the new generation, in command order', async () => {
    const { master, done } = hooksWith({
      nworkersChanged: (_server, now, old) => void done.push(`nworkersChanged ${now} ${old}`),
      onReload: (server) => void done.push(`onReload ${server.numWorkers}`),
      childExit: (_server, worker) => void done.push(`childExit ${worker.id} ${worker.generation}`),
    })
    master.workerExited({ id: 1, pid: 100, generation: 0, exitCode: 0, signal: null, cause: 'stop' })
    master.workersChanged(3, 2)
    master.reloadStarted()
    const lastSpawn = signal()
    for (const id of [4, 5, 6])
      master.spawning({ id, generation: 1 }, () => {
        done.push(`spawn ${id}`)
        if (id === 6) lastSpawn.happen()
      })
    await lastSpawn.happened
    expect(done).toEqual(['childExit 1 0', 'nworkersChanged 3 2', 'onReload 3', 'spawn 4', 'spawn 5', 'spawn 6'])
  })
})
