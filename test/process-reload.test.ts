// --reload and --reload-extra-files, end to end: an app in a temp directory
// is edited on disk and the answers change; a burst of saves is one reload;
// files outside the app's sources are ignored; a change that breaks the app
// leaves the old worker serving and says why.
import { mkdirSync, mkdtempSync, readdirSync, readlinkSync, rmSync, writeFileSync } from 'node:fs'
import { get } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { freePort, isAlive, killAll, startCorral, waitFor, type Corral } from './helpers/corral.ts'
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

/** The "Worker reloading: … modified" lines logged since `from`, each as the files it names. */
const reloadLines = (c: Corral, from: number) =>
  [
    ...c
      .log()
      .slice(from)
      .matchAll(/Worker reloading: (.*) modified/g),
  ].map((m) => m[1])

/**
 * Whether a process watches files: an inotify instance among its open file
 * descriptors (Node's fs.watch uses one on Linux; nothing else in a corral
 * master does).
 */
const watchesFiles = (pid: number) =>
  readdirSync(`/proc/${pid}/fd`).some((fd) => {
    try {
      return readlinkSync(`/proc/${pid}/fd/${fd}`) === 'anon_inode:inotify'
    } catch {
      return false // closed meanwhile
    }
  })

/**
 * Proves that files written before it caused no reload: a watched file
 * written after them is reported, and the kernel reports a watcher's changes
 * in the order they happened, so any change of theirs taken as a reload
 * would have been reported first (or in the same debounced line).
 */
async function expectOnlySentinelReload(c: Corral, from: number, sentinel: string, relPath: string): Promise<void> {
  writeFileSync(join(dir, relPath), sentinel)
  await c.waitForLog(/Worker reloading: .*modified/, { from })
  expect(reloadLines(c, from)[0]).toBe(relPath)
}

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

/** The generation serving now, once no reload is under way. */
const serving = async (c: Corral) => (await c.untilReloaded(0)).generation

async function start(extra: string[] = []): Promise<Corral> {
  const port = await freePort()
  url = `http://127.0.0.1:${port}/`
  const c = startCorral(['--reload', '-w', '1', '-b', `127.0.0.1:${port}`, ...extra, join(dir, 'app.ts')], { cwd: dir })
  await c.untilReady()
  await c.waitForLog(/Watching \d+ director(y|ies) for changes/)
  return c
}

describe('--reload', () => {
  it('a change to a file the app imports reloads the workers, once for a burst of saves', async () => {
    const c = await start()
    const [before, oldPid] = (await fetchText(url)).split(' ')
    expect(before).toBe('v1')
    const from = c.log().length
    const generation = await serving(c)
    for (const m of ['v2a', 'v2b', 'v2c', 'v2']) {
      writeMessage(m)
      await sleep(20)
    }
    await c.waitForLog(/Worker reloading: lib\/message\.ts modified/, { from })
    await c.untilReloaded(generation + 1)
    // The old worker may accept until it has handled its TERM.
    await waitFor(() => !isAlive(Number(oldPid)), { what: 'the old worker gone' })
    expect(isAlive(Number(oldPid))).toBe(false)
    const [after, newPid] = (await fetchText(url)).split(' ')
    expect(after).toBe('v2')
    expect(newPid).not.toBe(oldPid)
    // One reload for the burst: a later change is reported next, alone.
    const from2 = c.log().length
    await expectOnlySentinelReload(c, from2, 'export const other = 1\n', 'lib/other.ts')
    expect(reloadLines(c, from)).toEqual(['lib/message.ts', 'lib/other.ts'])
  })

  it('ignores node_modules, dot-directories and files that are not sources; watches directories created later', async () => {
    const c = await start()
    const from = c.log().length
    const generation = await serving(c)
    writeFileSync(join(dir, 'node_modules', 'dep', 'index.js'), 'export default 2\n')
    writeFileSync(join(dir, 'README.md'), 'more notes\n')
    mkdirSync(join(dir, '.cache'))
    writeFileSync(join(dir, '.cache', 'x.js'), '1\n')
    writeFileSync(join(dir, 'templates', 'page.html'), '<p>2</p>\n')
    writeFileSync(join(dir, '.#app.ts'), 'an editor lock file\n')
    await expectOnlySentinelReload(c, from, 'export const other = 1\n', 'lib/other.ts')
    await c.untilReloaded(generation + 1)
    // A new directory: watched from now on.
    mkdirSync(join(dir, 'lib', 'deep'))
    await c.untilReloaded(generation + 2)
    const from2 = c.log().length
    writeFileSync(join(dir, 'lib', 'deep', 'util.ts'), 'export const x = 1\n')
    await c.waitForLog(/Worker reloading: lib\/deep\/util\.ts modified/, { from: from2 })
    await c.untilReloaded(generation + 3)
    // Removed and created again (a branch switch): watched again.
    const from3 = c.log().length
    rmSync(join(dir, 'lib', 'deep'), { recursive: true })
    mkdirSync(join(dir, 'lib', 'deep'))
    await c.waitForLog(/Worker reloading: .*lib\/deep.* modified/, { from: from3 })
    await c.untilReloaded(generation + 4)
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
    const generation = await serving(c)
    writeMessage('v3')
    await c.untilReloaded(generation + 1)
    await waitFor(() => !isAlive(Number(oldPid)), { what: 'the old worker gone' })
    const [after, newPid] = (await fetchText(url)).split(' ')
    expect(after).toBe('v3')
    expect(newPid).not.toBe(oldPid)
  })

  it('--reload-extra-files: globs name more files to watch, new matches included', async () => {
    const c = await start(['--reload-extra-files', 'templates/*.html', '--reload-extra-file', 'README.md'])
    let from = c.log().length
    let generation = await serving(c)
    writeFileSync(join(dir, 'templates', 'page.html'), '<p>3</p>\n')
    await c.waitForLog(/Worker reloading: templates\/page\.html modified/, { from })
    await c.untilReloaded(++generation)
    from = c.log().length
    writeFileSync(join(dir, 'templates', 'new.html'), '<p>new</p>\n')
    await c.waitForLog(/Worker reloading: templates\/new\.html modified/, { from })
    await c.untilReloaded(++generation)
    from = c.log().length
    writeFileSync(join(dir, 'README.md'), 'changed\n')
    await c.waitForLog(/Worker reloading: README\.md modified/, { from })
    await c.untilReloaded(++generation)
    from = c.log().length
    writeFileSync(join(dir, 'templates', 'page.txt'), 'not matched\n')
    await expectOnlySentinelReload(c, from, '<p>4</p>\n', 'templates/page.html')
  })

  it('without --reload nothing is watched', async () => {
    const port = await freePort()
    const c = startCorral(
      ['-w', '1', '-b', `127.0.0.1:${port}`, '--reload-extra-files', 'README.md', join(dir, 'app.ts')],
      { cwd: dir },
    )
    await c.untilReady()
    expect(c.log()).toMatch(/--reload-extra-files has no effect without --reload/)
    // Nothing watches: the master holds no inotify instance, where --reload's does.
    expect(watchesFiles(c.pid)).toBe(false)
    // Gone first, so that the next master in this directory answers on its control socket.
    c.signal('SIGTERM')
    await c.exited
    const watching = await start()
    expect(watchesFiles(watching.pid)).toBe(true)
  })
})
