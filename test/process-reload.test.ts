// --reload and --reload-extra-files, end to end: an app in a temp directory
// is edited on disk and the answers change; a burst of saves is one reload;
// files outside the app's sources are ignored; a change that breaks the app
// leaves the old worker serving and says why.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { get } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { freePort, isAlive, killAll, startCorral, type Corral } from './helpers/corral.ts'
import { DEBOUNCE_MS } from '../src/master/reload-watch.ts'

function fetchText(url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    get(url, { agent: false }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (c: string) => (body += c))
      res.on('end', () => resolve(body))
    }).on('error', reject)
  })
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
const count = (text: string, re: RegExp) => text.match(new RegExp(re.source, 'g'))?.length ?? 0

let dir: string
let url: string

/** app.ts answers "<message> <pid>", with the message from lib/message.ts. */
function writeMessage(message: string): void {
  writeFileSync(join(dir, 'lib', 'message.ts'), `export const message = ${JSON.stringify(message)}\n`)
}

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'corral-reload-'))
  mkdirSync(join(dir, 'lib'))
  mkdirSync(join(dir, 'node_modules', 'dep'), { recursive: true })
  mkdirSync(join(dir, 'templates'))
  writeFileSync(join(dir, 'node_modules', 'dep', 'index.js'), 'export default 1\n')
  writeFileSync(join(dir, 'README.md'), 'notes\n')
  writeFileSync(join(dir, 'templates', 'page.html'), '<p>1</p>\n')
  writeMessage('v1')
  writeFileSync(
    join(dir, 'app.ts'),
    "import { message } from './lib/message.ts'\nexport default (req, res) => res.end(`${message} ${process.pid}`)\n",
  )
})
afterEach(async () => {
  await killAll()
  rmSync(dir, { recursive: true, force: true })
})

async function start(extra: string[] = []): Promise<Corral> {
  const port = await freePort()
  url = `http://127.0.0.1:${port}/`
  const c = startCorral(['--reload', '-w', '1', '-b', `127.0.0.1:${port}`, ...extra, join(dir, 'app.ts')], { cwd: dir })
  await c.waitForLog(/Ready: 1 worker/)
  await c.waitForLog(/Watching \d+ director(y|ies) for changes/)
  return c
}

describe('--reload', () => {
  it('a change to a file the app imports reloads the workers, once for a burst of saves', async () => {
    const c = await start()
    const [before, oldPid] = (await fetchText(url)).split(' ')
    expect(before).toBe('v1')
    const from = c.log().length
    for (const m of ['v2a', 'v2b', 'v2c', 'v2']) {
      writeMessage(m)
      await sleep(20)
    }
    await c.waitForLog(/Worker reloading: lib\/message\.ts modified/, { from })
    await c.waitForLog(/Reload complete/, { from })
    // The old worker may accept until it has handled its TERM.
    await c.waitForLog(new RegExp(`Worker exited \\(pid: ${oldPid}\\)`), { from })
    expect(isAlive(Number(oldPid))).toBe(false)
    const [after, newPid] = (await fetchText(url)).split(' ')
    expect(after).toBe('v2')
    expect(newPid).not.toBe(oldPid)
    // One reload for the burst.
    await sleep(DEBOUNCE_MS * 3)
    expect(count(c.log().slice(from), /Reloading: starting worker generation/)).toBe(1)
  })

  it('ignores node_modules, dot-directories and files that are not sources; watches directories created later', async () => {
    const c = await start()
    const from = c.log().length
    writeFileSync(join(dir, 'node_modules', 'dep', 'index.js'), 'export default 2\n')
    writeFileSync(join(dir, 'README.md'), 'more notes\n')
    mkdirSync(join(dir, '.cache'))
    writeFileSync(join(dir, '.cache', 'x.js'), '1\n')
    writeFileSync(join(dir, 'templates', 'page.html'), '<p>2</p>\n')
    writeFileSync(join(dir, '.#app.ts'), 'an editor lock file\n')
    await sleep(DEBOUNCE_MS * 4)
    expect(c.log().slice(from)).not.toMatch(/Worker reloading|Reloading/)
    // A new directory: watched from now on.
    mkdirSync(join(dir, 'lib', 'deep'))
    await c.waitForLog(/Reload complete/, { from })
    const from2 = c.log().length
    writeFileSync(join(dir, 'lib', 'deep', 'util.ts'), 'export const x = 1\n')
    await c.waitForLog(/Worker reloading: lib\/deep\/util\.ts modified/, { from: from2 })
    await c.waitForLog(/Reload complete/, { from: from2 })
    // Removed and created again (a branch switch): watched again.
    const from3 = c.log().length
    rmSync(join(dir, 'lib', 'deep'), { recursive: true })
    mkdirSync(join(dir, 'lib', 'deep'))
    await c.waitForLog(/Worker reloading: .*lib\/deep.* modified/, { from: from3 })
    await c.waitForLog(/Reload complete/, { from: from3 })
    await sleep(DEBOUNCE_MS * 2)
    // The new directory's watch is set up when its creation is seen, which a
    // busy machine may take a moment over: save again until a change is seen.
    const from4 = c.log().length
    const seen = /Worker reloading: lib\/deep\/util\.ts modified/
    for (let i = 2; i < 40 && !seen.test(c.log().slice(from4)); i++) {
      writeFileSync(join(dir, 'lib', 'deep', 'util.ts'), `export const x = ${i}\n`)
      await sleep(DEBOUNCE_MS * 2)
    }
    await c.waitForLog(seen, { from: from4 })
  })

  it('a change that breaks the app keeps the old worker serving and says why; fixing it reloads', async () => {
    const c = await start()
    const [, oldPid] = (await fetchText(url)).split(' ')
    const from = c.log().length
    writeFileSync(
      join(dir, 'lib', 'message.ts'),
      "export const message = 'v2'\nthrow new Error('message catalogue is corrupt')\n",
    )
    await c.waitForLog(
      /Reload abandoned: a worker of generation \d+ exited with code 4 while booting; generation \d+ keeps serving/,
      { from },
    )
    expect(c.log().slice(from)).toMatch(/message catalogue is corrupt/)
    expect(await fetchText(url)).toBe(`v1 ${oldPid}`)
    expect(c.child.exitCode).toBeNull()
    const from2 = c.log().length
    writeMessage('v3')
    await c.waitForLog(/Reload complete/, { from: from2 })
    await c.waitForLog(new RegExp(`Worker exited \\(pid: ${oldPid}\\)`), { from: from2 })
    const [after, newPid] = (await fetchText(url)).split(' ')
    expect(after).toBe('v3')
    expect(newPid).not.toBe(oldPid)
  })

  it('--reload-extra-files: globs name more files to watch, new matches included', async () => {
    const c = await start(['--reload-extra-files', 'templates/*.html', '--reload-extra-file', 'README.md'])
    let from = c.log().length
    writeFileSync(join(dir, 'templates', 'page.html'), '<p>3</p>\n')
    await c.waitForLog(/Worker reloading: templates\/page\.html modified/, { from })
    await c.waitForLog(/Reload complete/, { from })
    from = c.log().length
    writeFileSync(join(dir, 'templates', 'new.html'), '<p>new</p>\n')
    await c.waitForLog(/Worker reloading: templates\/new\.html modified/, { from })
    await c.waitForLog(/Reload complete/, { from })
    from = c.log().length
    writeFileSync(join(dir, 'README.md'), 'changed\n')
    await c.waitForLog(/Worker reloading: README\.md modified/, { from })
    from = c.log().length
    writeFileSync(join(dir, 'templates', 'page.txt'), 'not matched\n')
    await sleep(DEBOUNCE_MS * 4)
    expect(c.log().slice(from)).not.toMatch(/Worker reloading/)
  })

  it('without --reload nothing is watched', async () => {
    const port = await freePort()
    const c = startCorral(
      ['-w', '1', '-b', `127.0.0.1:${port}`, '--reload-extra-files', 'README.md', join(dir, 'app.ts')],
      { cwd: dir },
    )
    await c.waitForLog(/Ready: 1 worker/)
    expect(c.log()).toMatch(/--reload-extra-files has no effect without --reload/)
    const from = c.log().length
    writeMessage('v9')
    await sleep(DEBOUNCE_MS * 4)
    expect(c.log().slice(from)).not.toMatch(/Worker reloading|Reloading/)
  })
})
