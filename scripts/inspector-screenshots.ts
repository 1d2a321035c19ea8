// Regenerates the screenshots in spec/inspector.md:
//   npm run inspector:screenshots
// spec/inspector/live.png: a real corral (3 workers, after a TTIN and a HUP)
// with its --inspector page; spec/inspector/playground.png: `corral inspect`'s
// page after a few events; spec/inspector/paths.png: the playground stepping
// through one of the machine tests' generated paths. Debian's chromium through playwright-core, as the
// tests drive it; the master is stopped by its pid, with its workers.
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
  // Tall enough for the chart, the workers' table and their charts.
  await page.setViewportSize({ width: 1600, height: 1500 })
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

  await page.goto(`file://${INSPECTOR_PAGE}`)
  await page.waitForSelector('body[data-ready="true"]')
  await page.click('#ev-all-ready')
  await page.click('button[data-signal="TTIN"]')
  await page.click('button[data-signal="HUP"]')
  await page.screenshot({ path: `${OUT}/playground.png` })

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
  console.log('wrote spec/inspector/live.png, spec/inspector/playground.png, spec/inspector/paths.png')
} finally {
  await session.close()
  master.kill('SIGTERM')
}
