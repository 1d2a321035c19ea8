// `corral inspect` (spec/inspector.md): the URL it prints opens the model
// playground, where the pure master machine runs in the browser; firing
// events there takes the chart's transitions and lists what it emits.
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { describe, expect, it, vi } from 'vitest'
import { buildInspector } from '../scripts/build-inspector.ts'
import { explorations, explore, pathEvents } from '../scripts/master-paths.ts'
import { browserForTests, staysLocal } from './helpers/browser.ts'
import { BIN } from './helpers/corral.ts'

vi.setConfig({ testTimeout: 60_000, hookTimeout: 60_000 })

const browser = browserForTests(buildInspector)

/** The ids of the state nodes a state value is in, ancestors included (xstate's `parent.key` ids; the root is not drawn). */
const nodeIds = (value: unknown, prefix = 'master'): string[] =>
  typeof value === 'string'
    ? [`${prefix}.${value}`]
    : Object.entries(value as object).flatMap(([k, v]) => [`${prefix}.${k}`, ...nodeIds(v, `${prefix}.${k}`)])

const ACTIVE = (id: string) => `#master-chart g.state.active[data-state="${id}"]`

describe('corral inspect', () => {
  it('prints a file URL whose page runs the machines: boot, ready, a worker crash, a HUP', async () => {
    const { stdout } = await promisify(execFile)(process.execPath, [BIN, 'inspect'])
    const url = /file:\/\/\S+/.exec(stdout)?.[0]
    expect(url).toMatch(/^file:\/\/\/.+\/index\.html$/)
    const { page, errors, requests } = browser
    await page.goto(url!)
    await page.waitForSelector('body[data-mode="playground"][data-ready="true"]')
    await page.waitForSelector(ACTIVE('master.active.booting'))
    // The launch spawns the first worker alone; the second once it is ready.
    expect(await page.locator('#workers tr').count()).toBe(1)

    await page.click('#ev-all-ready')
    await page.waitForSelector(ACTIVE('master.active.running.steady'))
    await page.waitForSelector('#timeline li:has-text("WORKER_READY id=2") .cmds:has-text("ready")')

    // Worker 1 dies young with code 1: forgotten, and replaced on a later tick (the crash back-off).
    await page.selectOption('#worker-id', '1')
    await page.fill('#exit-code', '1')
    await page.click('#ev-exit')
    await page.waitForSelector('#timeline li:has-text("WORKER_EXIT id=1 code=1")')
    await page.waitForFunction(() => document.querySelectorAll('#workers tr').length === 1)
    await page.fill('#tick-ms', '20000')
    await page.click('#ev-tick')
    await page.waitForSelector('#timeline li:has-text("TICK now=20000") .cmds:has-text("spawnWorker")')
    await page.waitForFunction(() => document.querySelectorAll('#workers tr').length === 2)

    await page.click('button[data-signal="HUP"]')
    await page.waitForSelector(ACTIVE('master.active.running.reloading'))
    // The HUP asks for the settings; the answer (no config file here: at once) starts the reload.
    await page.waitForSelector('#timeline li:has-text("HUP") .cmds:has-text("readSettings")')
    await page.waitForSelector('#timeline li:has-text("SETTINGS_READ") .to:has-text("reloading")')
    expect(errors).toEqual([])
    expect(requests.filter((r) => !staysLocal(r))).toEqual([])
  })

  it('steps through a graph-generated path of the machine tests, forward and back, to its recorded end state', async () => {
    // In Node, by the module the path tests use: the two-worker exploration's longest path.
    const x = 1
    const paths = explore(explorations[x]!)
    const index = paths.reduce((best, p, i) => (p.steps.length > paths[best]!.steps.length ? i : best), 0)
    const path = paths[index]!
    const events = pathEvents(path)
    const end = path.state.value
    expect(events.length).toBeGreaterThan(3)

    const { stdout } = await promisify(execFile)(process.execPath, [BIN, 'inspect'])
    const { page, errors } = browser
    await page.goto(/file:\/\/\S+/.exec(stdout)![0])
    await page.waitForSelector('body[data-mode="playground"][data-ready="true"]')
    await page.selectOption('#path-exploration', String(x))
    await page.selectOption('#path-end', JSON.stringify(end))
    await page.selectOption('#path-pick', String(index))
    await page.click('#path-load')
    expect(await page.locator('#path-events li').count()).toBe(events.length)
    const entries = () => page.locator('#timeline li').count()
    for (let i = 1; i <= events.length; i++) {
      await page.click('#path-forward')
      await page.waitForSelector(`#path-status:has-text("step ${i} of ${events.length}")`)
      expect(await entries()).toBe(i)
    }
    // Back replays all but the last event from the start; forward takes it again.
    await page.click('#path-back')
    await page.waitForSelector(`#path-status:has-text("step ${events.length - 1} of ${events.length}")`)
    expect(await entries()).toBe(events.length - 1)
    await page.click('#path-forward')
    await page.waitForSelector('#path-status[data-at-end="true"]')
    expect(await page.getAttribute('#path-status', 'data-matches')).toBe('true')
    const active = await page.$$eval('#master-chart g.state.active', (gs) =>
      gs.map((g) => g.getAttribute('data-state')),
    )
    expect(new Set(active)).toEqual(new Set(nodeIds(end)))
    // The timeline lists the path's events, in order.
    const listed = await page.$$eval('#timeline li .what', (ws) => ws.map((w) => w.textContent?.split(' ')[0]))
    expect(listed).toEqual(events.map((e) => e.type))
    expect(errors).toEqual([])
  })

  it('takes no argument but --serve (and --allow-remote with it): anything else is a usage error, in one line', async () => {
    for (const [args, message] of [
      [['x'], /^corral inspect: unknown argument "x"/],
      [['--allow-remote'], /^corral inspect: --allow-remote goes with --serve/],
      [['--serve'], /^corral inspect: --serve needs \[HOST:\]PORT/],
    ] as const) {
      const failed = await promisify(execFile)(process.execPath, [BIN, 'inspect', ...args]).catch(
        (e: { code: number; stderr: string }) => e,
      )
      expect(failed).toMatchObject({ code: 2, stderr: expect.stringMatching(message) })
      expect((failed as { stderr: string }).stderr.trim().split('\n')).toHaveLength(1)
    }
  })
})
