// Regenerates the screenshots in spec/inspector.md:
//   npm run inspector:screenshots
// All at 1400 × 900, the size the page is made to be read at.
// spec/inspector/live.png: a real corral (3 workers, after a TTIN and a HUP)
// with its --inspector page; spec/inspector/playground.png: `corral inspect`'s
// page after the tour's HUP step; spec/inspector/tour.zh-CN.png: the same page
// in Chinese at the tour's heartbeat step; spec/inspector/worker.png: a
// worker's chart, one tab away; spec/inspector/paths.png: the playground
// stepping through one of the machine tests' generated paths. Debian's
// chromium through playwright-core, as the tests drive it (the Chinese needs
// a CJK font: fonts-noto-cjk); the master is stopped by its pid, with its workers.
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { buildInspector, INSPECTOR_PAGE } from './build-inspector.ts'
import { openBrowser } from '../test/helpers/browser.ts'

const root = fileURLToPath(new URL('..', import.meta.url))
const OUT = `${root}spec/inspector`

await buildInspector()
const master = spawn(
  process.execPath,
  [
    `${root}bin/corral.js`,
    '-w',
    '2',
    '-b',
    '127.0.0.1:0',
    '--no-control-socket',
    '--inspector',
    '127.0.0.1:0',
    `${root}test/fixtures/app-slow-boot.ts`,
  ],
  { env: { ...process.env, BOOT_DELAY_MS: '0' }, stdio: ['ignore', 'ignore', 'pipe'] },
)
let log = ''
const logged = (pattern: RegExp) =>
  new Promise<RegExpMatchArray>((resolve, reject) => {
    const look = () => {
      const m = pattern.exec(log)
      if (m) {
        master.stderr.off('data', look)
        master.off('exit', reject)
        resolve(m)
      }
    }
    master.stderr.on('data', (chunk: Buffer) => {
      log += chunk
      look()
    })
    master.once('exit', () => reject(new Error(`corral exited:\n${log}`)))
    look()
  })

const session = await openBrowser()
try {
  const [, url] = await logged(/Inspector at: (\S+)/)
  await logged(/Ready: 2 worker/)
  const { page } = session
  await page.setViewportSize({ width: 1400, height: 900 })
  await page.goto(url!)
  await page.waitForSelector('body[data-connected="true"]')
  await page.click('button[data-signal="TTIN"]')
  await page.waitForFunction(() => document.querySelectorAll('#workers tr').length === 3)
  await page.click('button[data-signal="HUP"]')
  await page.waitForSelector('#master-chart g.state.active[data-state="master.active.running.steady"]')
  await page.waitForFunction(() =>
    Array.from(document.querySelectorAll('#workers td:nth-child(3)')).every((td) => td.textContent === '1'),
  )
  // The HUP's entry selected: the chart as it was, the transition taken lit.
  await page.click('#timeline li.event:has-text("HUP")')
  await page.screenshot({ path: `${OUT}/live.png` })

  const tourStep = async (id: string, lang: string) => {
    await page.goto(`file://${INSPECTOR_PAGE}?lang=${lang}&step=${id}`)
    await page.waitForSelector('body[data-ready="true"]')
    await page.click('#tour-do')
    await page.waitForSelector(`#tour-result[data-step="${id}"]`)
  }
  await tourStep('hup', 'en')
  await page.screenshot({ path: `${OUT}/playground.png` })
  await tourStep('timeout', 'zh-CN')
  await page.screenshot({ path: `${OUT}/tour.zh-CN.png` })
  await tourStep('worker-types', 'en')
  await page.click('#chart-tabs button[data-chart="worker-1"]')
  await page.screenshot({ path: `${OUT}/worker.png` })

  await page.goto(`file://${INSPECTOR_PAGE}?lang=en`)
  await page.waitForSelector('body[data-ready="true"]')

  // Two workers; a path that ends in a reload, stepped to its end and back one.
  await page.selectOption('#path-exploration', '1')
  const reloading = await page.$eval(
    '#path-end',
    (select) => Array.from((select as HTMLSelectElement).options).find((o) => o.text.includes('reloading'))?.value,
  )
  if (reloading) await page.selectOption('#path-end', reloading)
  await page.click('#path-load')
  await page.click('#path-all')
  await page.click('#path-back')
  await page.screenshot({ path: `${OUT}/paths.png` })
  console.log('wrote spec/inspector/{live,playground,tour.zh-CN,worker,paths}.png')
} finally {
  await session.close()
  master.kill('SIGTERM')
}
