// The guided tour in the playground (src/inspector-ui/tour.ts), as a reader
// meets it: `corral inspect --serve` behind its token, Host and Origin
// checks; the whole tour walked in English and in Chinese in chromium, each
// step's "do it" ending where its text says, with no console error; the
// language taken from the browser, with a switch; the chart readable at
// 1400 × 900 (labels measured as rendered) and a worker's chart one click away.
import { spawn } from 'node:child_process'
import { request } from 'node:http'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { buildInspector, INSPECTOR_PAGE } from '../scripts/build-inspector.ts'
import { TOUR } from '../src/inspector-ui/tour.ts'
import { WORDS } from '../src/inspector-ui/i18n.ts'
import { browserForTests, openBrowser, staysLocal } from './helpers/browser.ts'
import { BIN, killAll, track } from './helpers/corral.ts'

vi.setConfig({ testTimeout: 120_000, hookTimeout: 60_000 })

const browser = browserForTests(buildInspector)
afterEach(killAll)

/** The ids of the state nodes a dotted state is in, ancestors included (the root is not drawn). */
const nodeIds = (dotted: string, prefix = 'master'): string[] =>
  dotted.split('.').map((_, i, keys) => `${prefix}.${keys.slice(0, i + 1).join('.')}`)

function get(url: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (c: string) => {
        body += c
      })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }))
    })
    req.on('error', reject)
    req.end()
  })
}

/** `corral inspect --serve ADDRESS`: its URL, once printed, and its exit. */
function serveInspect(address: string) {
  const child = spawn(process.execPath, [BIN, 'inspect', '--serve', address], { stdio: ['ignore', 'pipe', 'pipe'] })
  track(child.pid!)
  let out = ''
  let err = ''
  child.stderr.on('data', (c: Buffer) => {
    err += c
  })
  const exited = new Promise<number | null>((done) => child.once('exit', (code) => done(code)))
  const url = new Promise<string>((resolve, reject) => {
    child.stdout.on('data', (c: Buffer) => {
      out += c
      const m = /The model playground at: (\S+)/.exec(out)
      if (m) resolve(m[1]!)
    })
    void exited.then(() => reject(new Error(`corral inspect --serve exited: ${out}${err}`)))
  })
  return { child, url, exited, stderr: () => err }
}

type Page = typeof browser.page

/** Every step, in order, by the panel's own controls: "do it" ends where the text says, on the chart too. */
async function walkTour(page: Page, lang: 'en' | 'zh-CN'): Promise<void> {
  await page.selectOption('#tour-step', '0')
  for (const [i, step] of TOUR.entries()) {
    if (i > 0) await page.click('#tour-next')
    await page.waitForSelector(`#tour[data-step="${step.id}"]`)
    expect(await page.textContent('#tour-title')).toContain(step.title[lang])
    // The transitions the step is about are lit on the master's chart (or a worker's).
    const lit = await page.locator('svg .lit').count()
    if (step.transitions.length > 0) expect(lit, step.id).toBeGreaterThan(0)
    await page.click('#tour-do')
    await page.waitForSelector(`#tour-result[data-step="${step.id}"]`)
    expect(await page.getAttribute('#tour-result', 'data-matches'), step.id).toBe('true')
    expect(await page.textContent('#tour-result')).toContain(WORDS[lang].asSaid(step.expect.state))
    const active = await page.$$eval('#master-chart g.state.active', (gs) =>
      gs.map((g) => g.getAttribute('data-state')),
    )
    expect(new Set(active), step.id).toEqual(new Set(nodeIds(step.expect.state)))
    const rows = await page.$$eval('#workers tr td:nth-child(4)', (tds) => tds.map((td) => td.textContent))
    expect(rows, step.id).toEqual(step.expect.workers)
  }
}

/** The chart's labels as rendered: font size times the SVG's scale on screen, median. */
const medianLabelPx = (page: Page, chart: string) =>
  page.$$eval(`${chart} svg text`, (texts) => {
    const sizes = texts
      .filter((t) => (t as SVGTextElement).getBoundingClientRect().height > 0)
      .map((t) => Number.parseFloat(getComputedStyle(t).fontSize) * (t as SVGTextElement).getScreenCTM()!.a)
      .sort((a, b) => a - b)
    return sizes[Math.floor(sizes.length / 2)] ?? 0
  })

describe('the guided tour', () => {
  it('corral inspect --serve: the playground over HTTP, token, Host and Origin checked; the whole tour in English, then in Chinese by the switch', async () => {
    const served = serveInspect('127.0.0.1:0')
    const url = await served.url
    const { port } = new URL(url)
    const bare = `http://127.0.0.1:${port}/`
    expect((await get(bare)).status).toBe(401)
    expect((await get(`${bare}?token=wrong`)).status).toBe(403)
    expect((await get(url, { origin: 'http://evil.example' })).status).toBe(403)
    expect((await get(url, { host: `evil.example:${port}` })).status).toBe(403)
    expect((await get(url.replace('127.0.0.1', 'localhost'))).status).toBe(200)
    const page200 = await get(url)
    expect(page200.status).toBe(200)
    expect(page200.body).toContain('data-serve="playground"')

    const { page, errors, requests } = browser
    await page.setViewportSize({ width: 1400, height: 900 })
    await page.goto(url)
    await page.waitForSelector('body[data-mode="playground"][data-ready="true"]')
    expect(await page.getAttribute('html', 'lang')).toBe('en')
    await walkTour(page, 'en')

    await page.selectOption('#lang', 'zh-CN')
    await page.waitForSelector('html[lang="zh-CN"]')
    expect(await page.textContent('#tour-do')).toBe(WORDS['zh-CN'].doIt)
    expect(await page.textContent('#ev-all-ready')).toBe(WORDS['zh-CN'].allReady)
    await walkTour(page, 'zh-CN')
    expect(errors).toEqual([])
    expect(requests.filter((r) => !staysLocal(r))).toEqual([])

    served.child.kill('SIGTERM')
    expect(await served.exited).toBe(0)
    expect(served.stderr()).toContain('SIGTERM, stopped')
  })

  it('--serve refuses an address that is not loopback, and a bad one, in one line', async () => {
    for (const [address, message] of [
      ['192.0.2.1:8000', /not a loopback address; add --allow-remote/],
      ['nope', /not \[HOST:\]PORT/],
    ] as const) {
      const served = serveInspect(address)
      served.url.catch(() => {})
      expect(await served.exited).toBe(2)
      expect(served.stderr()).toMatch(message)
      expect(served.stderr().trim().split('\n')).toHaveLength(1)
    }
  })

  it('speaks the browser’s language: Chinese for a zh-CN browser, until switched', async () => {
    const zh = await openBrowser({ locale: 'zh-CN' })
    try {
      await zh.page.goto(`file://${INSPECTOR_PAGE}`)
      await zh.page.waitForSelector('body[data-ready="true"]')
      expect(await zh.page.getAttribute('html', 'lang')).toBe('zh-CN')
      expect(await zh.page.textContent('#tour-title')).toContain(TOUR[0]!.title['zh-CN'])
      expect(await zh.page.textContent('#tour-step option')).toContain(TOUR[0]!.title['zh-CN'])
      await zh.page.selectOption('#lang', 'en')
      await zh.page.waitForSelector('html[lang="en"]')
      expect(await zh.page.textContent('#tour-do')).toBe(WORDS.en.doIt)
      // The choice is kept for the next visit.
      await zh.page.reload()
      await zh.page.waitForSelector('body[data-ready="true"]')
      expect(await zh.page.getAttribute('html', 'lang')).toBe('en')
      expect(zh.errors).toEqual([])
    } finally {
      await zh.close()
    }
  })

  it('is readable at 1400 × 900: labels ≥ 11 px as rendered, zoom and pan, a worker’s chart one click away', async () => {
    const { page, errors } = browser
    await page.setViewportSize({ width: 1400, height: 900 })
    await page.goto(`file://${INSPECTOR_PAGE}?lang=en`)
    await page.waitForSelector('body[data-ready="true"]')
    const master = await medianLabelPx(page, '#master-chart')
    expect(master).toBeGreaterThanOrEqual(11)
    // The active state is in view, not below the fold.
    const inView = (selector: string) =>
      page.$eval(selector, (el) => {
        const r = el.getBoundingClientRect()
        const port = document.getElementById('viewport')!.getBoundingClientRect()
        return r.top >= port.top && r.bottom <= port.bottom && r.left >= port.left && r.right <= port.right
      })
    expect(await inView('#master-chart g.state.active[data-state="master.active.booting"] > rect')).toBe(true)

    // Zoom: in doubles nothing away from readable, fit shows the whole chart; 100 % comes back.
    await page.click('#zoom-in')
    expect(await medianLabelPx(page, '#master-chart')).toBeGreaterThan(master)
    await page.click('#zoom-fit')
    const fitted = await page.$eval('#master-chart svg', (svg) => {
      const r = svg.getBoundingClientRect()
      const port = document.getElementById('viewport')!
      return r.width <= port.clientWidth + 1 && r.height <= port.clientHeight + 1
    })
    expect(fitted).toBe(true)
    await page.click('#zoom-reset')
    expect(await medianLabelPx(page, '#master-chart')).toBeCloseTo(master, 1)
    // Pan: dragging the chart moves the view.
    const before = await page.$eval('#viewport', (v) => [v.scrollLeft, v.scrollTop])
    const port = (await page.locator('#viewport').boundingBox())!
    await page.mouse.move(port.x + port.width / 2, port.y + port.height / 2)
    await page.mouse.down()
    await page.mouse.move(port.x + port.width / 2 + 120, port.y + port.height / 2 + 80, { steps: 4 })
    await page.mouse.up()
    const after = await page.$eval('#viewport', (v) => [v.scrollLeft, v.scrollTop])
    expect(after).not.toEqual(before)

    // A worker's chart: one click on its tab, in view without scrolling, as readable.
    await page.click('#chart-tabs button[data-chart="worker-1"]')
    await page.waitForSelector(
      '#worker-charts figure[data-worker="1"].shown g.state.active[data-state="worker.booting"]',
    )
    expect(await inView('#worker-charts figure[data-worker="1"] g.state.active > rect')).toBe(true)
    expect(await medianLabelPx(page, '#worker-charts figure[data-worker="1"]')).toBeGreaterThanOrEqual(11)
    expect(await page.isHidden('#master-chart')).toBe(true)
    await page.click('#chart-tabs button[data-chart="master"]')
    await page.waitForSelector('#master-chart svg')
    console.log(`chart labels at 1400 × 900, median as rendered: ${master.toFixed(1)} px`)
    expect(errors).toEqual([])
  })
})
