// The master's one observation path (src/master/parts/chart.ts): the real
// chart in the Chart part, its steps as status, the inspector, ctl's waits
// and systemd (src/master/systemd-notify.ts, followMaster) read them. No
// process: events are sent by hand, as the input stream would send them.
import * as Context from 'effect/Context'
import * as Effect from 'effect/Effect'
import * as Layer from 'effect/Layer'
import { describe, expect, it } from 'vitest'
import type { MasterCommand } from '../machines/master.ts'
import { defaults } from '../src/config/resolve.ts'
import type { Logger } from '../src/logging/log.ts'
import { Chart, type ChartStep } from '../src/master/parts/chart.ts'
import { MasterConfig, masterConfig } from '../src/master/parts/config.ts'
import { followMaster, type SystemdNotify } from '../src/master/systemd-notify.ts'
import { exit, hup, ready } from './helpers/master-actor.ts'

const quiet: Logger = {
  debug: () => {},
  info: () => {},
  warning: () => {},
  error: () => {},
  critical: () => {},
  exception: () => {},
}

/** The Chart part over default settings with `workers` workers, its steps and commands recorded. */
async function chartPart(workers: number, log: Logger = quiet) {
  const settings = { ...defaults(), workers }
  const config = masterConfig({
    settings,
    app: 'app.ts',
    name: 'app',
    log,
    statsd: undefined,
    reloadSettings: undefined,
    sourcesOf: undefined,
  })
  const context = await Effect.runPromise(
    Effect.scoped(Layer.build(Chart.layer.pipe(Layer.provide(Layer.succeed(MasterConfig, config))))),
  )
  const chart = Context.get(context, Chart)
  const steps: ChartStep[] = []
  const commands: MasterCommand[] = []
  chart.observe((step) => steps.push(step))
  chart.onCommand((command) => commands.push(command))
  return { chart, steps, commands }
}

const spawned = (commands: readonly MasterCommand[]) =>
  commands.flatMap((c) => (c.type === 'spawnWorker' ? [c.id] : []))

describe('the chart is observed once, as steps', () => {
  it('events sent before the start are each seen from the chart they reached, not the one they were sent to', async () => {
    const { chart, steps, commands } = await chartPart(2)
    chart.actor.send({ type: 'TTIN' })
    chart.actor.send({ type: 'TTIN' })
    expect(steps).toEqual([])
    chart.actor.start()
    // The start is not a step, but its commands are carried out: the launch's first worker.
    expect(spawned(commands)).toHaveLength(1)
    expect(steps.map((s) => s.event.type)).toEqual(['TTIN', 'TTIN'])
    expect(steps.map((s) => [s.before.target, s.after.context.target])).toEqual([
      [2, 3],
      [3, 4],
    ])
    // Once it is ready, the step that says so spawns the other three.
    chart.actor.send({ type: 'WORKER_READY', id: spawned(commands)[0]! })
    expect(spawned(steps.at(-1)!.commands)).toHaveLength(3)
    // Each step carries what the chart emitted while it took that event, and nothing else.
    const stepped = steps.flatMap((s) => s.commands)
    expect(spawned(stepped)).toEqual(spawned(commands).slice(1))
    expect(stepped).toEqual(commands.slice(commands.length - stepped.length))
  })

  it('a tick that only moves the clock is quiet; one that aborts a silent worker is not', async () => {
    const { chart, steps, commands } = await chartPart(1)
    chart.actor.start()
    const [id] = spawned(commands)
    chart.actor.send(ready(id!)[0]!)
    const now = chart.view().context.now
    chart.actor.send({ type: 'TICK', now: now + 100 })
    expect(steps.at(-1)).toMatchObject({ quiet: true, commands: [] })
    expect(steps.at(-1)!.after.context.now).toBe(now + 100)
    // Past --timeout (30 s by default) without a heartbeat, in steps of 1 s (a bigger gap is a suspended master, graced).
    for (let t = now + 1_000; t <= now + 32_000; t += 1_000) chart.actor.send({ type: 'TICK', now: t })
    const abort = steps.find((s) => s.commands.some((c) => c.type === 'abortWorker'))
    expect(abort).toMatchObject({ quiet: false, event: { type: 'TICK' } })
  })

  it('the view says ready and draining from the chart’s tags, and a stopped chart is still draining', async () => {
    const { chart, steps, commands } = await chartPart(1)
    chart.actor.start()
    expect(chart.view()).toMatchObject({ ready: false, draining: false })
    const [id] = spawned(commands)
    chart.actor.send(ready(id!)[0]!)
    expect(steps.at(-1)!.after).toMatchObject({ state: 'active.running.steady', ready: true, draining: false })
    chart.actor.send({ type: 'TERM' })
    expect(steps.at(-1)!.after).toMatchObject({ ready: false, draining: true })
    chart.actor.send(exit(id!, 0))
    expect(steps.at(-1)!.after).toMatchObject({ state: 'dead', draining: true })
  })

  it('an observer that throws is logged; the chart and the observers after it go on', async () => {
    const logged: string[] = []
    const { chart, steps } = await chartPart(1, { ...quiet, exception: (msg, err) => logged.push(`${msg}: ${err}`) })
    const seen: string[] = []
    chart.observe((step) => {
      if (step.event.type === 'TTIN') throw new Error('observer bug')
    })
    chart.observe((step) => seen.push(step.event.type))
    chart.actor.start()
    chart.actor.send({ type: 'TTIN' })
    chart.actor.send({ type: 'TTOU' })
    expect(seen).toEqual(['TTIN', 'TTOU'])
    expect(steps.map((s) => s.after.context.target)).toEqual([2, 1])
    expect(logged).toEqual(["Observing the chart's TTIN: Error: observer bug"])
  })
})

describe('systemd follows the chart’s commands and tags', () => {
  it('READY=1 at ready, RELOADING=1 at a reload and READY=1 at its end, STOPPING=1 at a stop', async () => {
    const { chart, commands } = await chartPart(1)
    const said: string[] = []
    const notify: SystemdNotify = {
      ready: (status) => void said.push(`READY ${status}`),
      reloading: (status) => void said.push(`RELOADING ${status}`),
      stopping: (status) => void said.push(`STOPPING ${status}`),
      status: (status) => void said.push(`STATUS ${status}`),
      close: () => Promise.resolve(),
    }
    chart.observe(followMaster(notify))
    chart.actor.start()
    chart.actor.send(ready(spawned(commands)[0]!)[0]!)
    for (const event of hup()) chart.actor.send(event)
    const next = spawned(commands)[1]!
    chart.actor.send(ready(next)[0]!)
    chart.actor.send(exit(spawned(commands)[0]!, 0))
    chart.actor.send({ type: 'TERM' })
    expect(said.filter((s) => !s.startsWith('STATUS'))).toEqual([
      'READY 1 worker serving, generation 0',
      'RELOADING reloading: generation 1 starting, 1 worker serving',
      expect.stringMatching(/^READY \d workers? serving, generation 1$/),
      'STOPPING stopping: 1 worker finishing',
    ])
  })
})
