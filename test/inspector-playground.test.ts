// `corral inspect` (spec/inspector.md): the URL it prints opens the model
// playground, where the pure master machine runs in the browser; firing
// events there takes the chart's transitions and lists what it emits.
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { buildInspector } from '../scripts/build-inspector.ts'
import { openBrowser, staysLocal, type Session } from './helpers/browser.ts'
import { BIN } from './helpers/corral.ts'

vi.setConfig({ testTimeout: 60_000, hookTimeout: 60_000 })

let browser: Session
beforeAll(async () => {
  await buildInspector()
  browser = await openBrowser()
})
afterAll(async () => {
  await browser?.close()
})

const ACTIVE = (id: string) => `#master-chart g.state.active[data-state="${id}"]`

describe('corral inspect', () => {
  it('prints a file URL whose page runs the machines: boot, ready, a worker crash, a HUP', async () => {
    const { stdout } = await promisify(execFile)(process.execPath, [BIN, 'inspect'])
    const url = /file:\/\/\S+/.exec(stdout)?.[0]
    expect(url).toBeDefined()
    const { page, errors, requests } = browser
    await page.goto(url!)
    await page.waitForSelector('body[data-mode="playground"][data-ready="true"]')
    await page.waitForSelector(ACTIVE('master.active.booting'))
    expect(await page.locator('#workers tr').count()).toBe(2)

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
    await page.waitForSelector('#timeline li:has-text("HUP") .to:has-text("reloading")')
    expect(errors).toEqual([])
    expect(requests.filter((r) => !staysLocal(r))).toEqual([])
  })

  it('takes no arguments', async () => {
    const failed = await promisify(execFile)(process.execPath, [BIN, 'inspect', 'x']).catch(
      (e: { code: number; stderr: string }) => e,
    )
    expect(failed).toMatchObject({ code: 2, stderr: expect.stringMatching(/takes no arguments/) })
  })
})
