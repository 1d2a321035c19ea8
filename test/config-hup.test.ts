// HUP re-reads the configuration sources, with real masters, workers,
// signals and clients: new workers get a changed setting (seen in what they
// do), and a config file that has become invalid, or names a file that is
// not there, refuses the reload with the reason while the master and its
// workers carry on with the settings they had.
import { execFile } from 'node:child_process'
import { get } from 'node:http'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { BIN, fixture, freePort, isAlive, killAll, startCorral, waitFor, type Corral } from './helpers/corral.ts'
import { startLoad } from './helpers/load.ts'

const APP = fixture('app-pid.ts')
const tmp = mkdtempSync(join(tmpdir(), 'corral-hup-'))
afterEach(killAll)
afterAll(() => rmSync(tmp, { recursive: true, force: true }))

const base = { ...process.env }
delete base['WEB_CONCURRENCY']
delete base['CORRAL_CMD_ARGS']

function body(url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    // A new connection each time: a kept-alive one would reach a retired worker.
    get(url, { agent: false }, (res) => {
      let text = ''
      res.setEncoding('utf8')
      res.on('data', (c: string) => (text += c))
      res.on('end', () => (res.statusCode === 200 ? resolve(text) : reject(new Error(`status ${res.statusCode}`))))
    }).on('error', reject)
  })
}

let dirs = 0
async function withConfig(text: string) {
  const dir = join(tmp, String(++dirs))
  const { mkdirSync } = await import('node:fs')
  mkdirSync(dir)
  const file = join(dir, 'corral.config.ts')
  writeFileSync(file, text)
  return { dir, write: (next: string) => writeFileSync(file, next) }
}

/** `corral ctl show config` of the master serving from `dir`: each setting's value and source. */
function shownConfig(dir: string): Promise<Map<string, { value: unknown; source: string }>> {
  return new Promise((resolve, reject) =>
    execFile(process.execPath, [BIN, 'ctl', '-s', join(dir, 'corral.ctl'), '-j', 'show', 'config'], (err, stdout) => {
      if (err) return reject(err)
      const { settings } = JSON.parse(stdout) as { settings: { name: string; value: unknown; source: string }[] }
      resolve(new Map(settings.map(({ name, value, source }) => [name, { value, source }])))
    }),
  )
}

/** `corral reload` for the master serving from `dir`, as a user runs it. */
function reload(dir: string): Promise<{ code: number; stdout: string }> {
  return new Promise((resolve) =>
    execFile(process.execPath, [BIN, 'reload', '-s', join(dir, 'corral.ctl')], (err, stdout) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout }),
    ),
  )
}

/** The log after `from`, once the reload that a HUP sent now starts has completed. */
async function hup(c: Corral): Promise<string> {
  const from = c.log().length
  await c.hup()
  return c.log().slice(from)
}

describe('the sources at work in a running server', () => {
  it('config file bind, CORRAL_CMD_ARGS workers over the file and WEB_CONCURRENCY', async ({ signal }) => {
    const port = await freePort()
    const { dir } = await withConfig(`export default { bind: ['127.0.0.1:${port}'], workers: 3 }\n`)
    const c = startCorral([APP], { cwd: dir, env: { ...base, WEB_CONCURRENCY: '1', CORRAL_CMD_ARGS: '-w 2' }, signal })
    expect((await c.untilReady()).workers).toBe(2)
    expect(c.log()).toContain(`Listening at: http://127.0.0.1:${port}`)
    expect(c.workers()).toHaveLength(2)
    expect(Number(await body(`http://127.0.0.1:${port}/`))).toBeGreaterThan(0)
    c.signal('SIGTERM')
    expect((await c.exited).code).toBe(0)
  })
})

describe('HUP re-reads the config file', () => {
  it('new workers get a changed setting, the master a new worker count; one applied only at start is kept and says so', async ({
    signal,
  }) => {
    const port = await freePort()
    const url = `http://127.0.0.1:${port}/`
    const conf = (level: string, name: string, workers: number, more = '') =>
      `export default { bind: ['127.0.0.1:${port}'], workers: ${workers}, logLevel: '${level}', name: '${name}'${more} }\n`
    const { dir, write } = await withConfig(conf('info', 'before', 1))
    // Found in the working directory, and named as found.
    const file = 'corral.config.ts'
    const c = startCorral([APP], { cwd: dir, env: base, signal })
    await c.untilReady()
    const before = await body(url)
    expect(c.log()).not.toMatch(/\[DEBUG\]/)
    expect((await shownConfig(dir)).get('maxRequests')).toEqual({ value: 0, source: 'default' })

    write(conf('debug', 'after', 2, ', maxRequests: 5000'))
    const from = c.log().length
    const after = await hup(c)
    // `ctl show config` follows the settings in force: values and where each came from.
    const shown = await shownConfig(dir)
    expect(shown.get('maxRequests')).toEqual({ value: 5000, source: `config file ${file}` })
    expect(shown.get('logLevel')).toEqual({ value: 'debug', source: `config file ${file}` })
    // Kept from the start, with the start's source.
    expect(shown.get('name')).toEqual({ value: 'before', source: `config file ${file}` })
    expect(after).toContain(`Reload: new workers get workers 1 -> 2, maxRequests 0 -> 5000, logLevel "info" -> "debug"`)
    expect(after).toMatch(/\[WARNING\] Reload: name changed \("before" -> "after"\) but is applied only at start/)
    expect(after).toMatch(/Number of workers: 1 -> 2 \(from the re-read settings\)/)
    // The new worker logs at debug: the setting reached it.
    await c.waitForLog(/\[DEBUG\] Worker \d+ serving 1 listener/, { from })
    // The old worker was told to stop when the reload completed; once it has
    // gone, the new one answers.
    await waitFor(() => !isAlive(Number(before)), { what: `old worker ${before} to exit` })
    const now = await body(url)
    expect(now).not.toBe(before)
    expect(c.log().slice(from)).toMatch(new RegExp(`\\[${now}\\] \\[DEBUG\\]`))
    expect(isAlive(c.pid)).toBe(true)
    await waitFor(() => c.workers().length === 2, { what: 'the new generation of 2 workers' })
  })

  it('a corral.config.ts written with import/export in a CommonJS project: read at start and on HUP, its worker hooks run', async ({
    signal,
  }) => {
    const port = await freePort()
    const conf = (timeout: number) =>
      "import { defineConfig } from 'corral'\n" +
      `const timeout: number = ${timeout}\n` +
      `export default defineConfig({ bind: ['127.0.0.1:${port}'], workers: 1, timeout,\n` +
      '  postWorkerInit(worker) { worker.log.info(`Hook: timeout ${worker.settings.timeout}`) } })\n'
    const { dir, write } = await withConfig(conf(31))
    writeFileSync(join(dir, 'package.json'), '{ "type": "commonjs" }\n')
    const c = startCorral([APP], { cwd: dir, env: base, signal })
    await c.waitForLog(/Hook: timeout 31/)
    write(conf(32))
    const after = await hup(c)
    expect(after).toContain('Reload: new workers get timeout 31 -> 32')
    await c.waitForLog(/Hook: timeout 32/)
    expect(c.log()).not.toMatch(/ERROR|Warning/)
  })

  it('with --no-config, a config file that appears in the working directory is not read on HUP', async ({ signal }) => {
    const dir = join(tmp, String(++dirs))
    mkdirSync(dir)
    const c = startCorral(['--no-config', '-w', '1', '-b', `127.0.0.1:${await freePort()}`, APP], {
      cwd: dir,
      env: base,
      signal,
    })
    await c.untilReady()
    writeFileSync(join(dir, 'corral.config.ts'), 'export default { timeout: 33 }\n')
    expect(await hup(c)).toContain('Reload: settings unchanged')
  })

  it('a file that has become invalid refuses the reload, one line per problem; the master and its workers carry on', async ({
    signal,
  }) => {
    const port = await freePort()
    const url = `http://127.0.0.1:${port}/`
    const { dir, write } = await withConfig(`export default { bind: ['127.0.0.1:${port}'], workers: 1 }\n`)
    const c = startCorral([APP], { cwd: dir, env: base, signal })
    await c.untilReady()
    const worker = await body(url)
    const load = startLoad(url, { connections: 2 })

    write(`export default { bind: ['127.0.0.1:${port}'], workers: 1,\n`)
    const broken = await reload(dir)
    expect(broken.code).toBe(1)
    expect(broken.stdout).toMatch(
      new RegExp(
        `^reload not started: corral\\.config\\.ts: failed to load: .* \\(line \\d+\\) \\(master ${c.pid}\\)\n$`,
      ),
    )

    write(`export default { bind: ['127.0.0.1:${port}'], workers: 0, wrokers: 2, logLevel: 'debug' }\n`)
    const from = c.log().length
    const invalid = await reload(dir)
    expect(invalid.code).toBe(1)
    expect(invalid.stdout).toContain('reload not started: corral.config.ts: unknown setting "wrokers"')
    await c.waitForLog(/Reload not started: corral\.config\.ts: workers: /, { from })
    const errors = c
      .log()
      .slice(from)
      .split('\n')
      .filter((l) => l.includes('[ERROR]'))
    expect(errors).toEqual([
      expect.stringMatching(
        /Reload not started: corral\.config\.ts: unknown setting "wrokers" \(did you mean workers\?\)$/,
      ),
      expect.stringMatching(/Reload not started: corral\.config\.ts: workers: expected a positive integer, got 0$/),
    ])

    const result = await load.stop()
    expect(result.failed).toBe(0)
    expect(result.ok).toBeGreaterThan(0)
    // No reload started: the worker of the start serves on, alone.
    expect(await body(url)).toBe(worker)
    expect(c.log()).not.toMatch(/Reloading: starting worker generation/)
    expect(c.workers()).toHaveLength(1)
    c.signal('SIGTERM')
    expect((await c.exited).code).toBe(0)
  })

  it('a file that now names a missing --certfile refuses the reload with the reason, as at start; the old worker serves on', async ({
    signal,
  }) => {
    const port = await freePort()
    const url = `http://127.0.0.1:${port}/`
    const conf = (more: string) => `export default { bind: ['127.0.0.1:${port}'], workers: 1${more} }\n`
    const { dir, write } = await withConfig(conf(''))
    const c = startCorral([APP], { cwd: dir, env: base, signal })
    await c.untilReady()
    const worker = await body(url)

    const missing = join(dir, 'missing.pem')
    write(conf(`, certfile: ${JSON.stringify(missing)}, keyfile: ${JSON.stringify(missing)}`))
    const from = c.log().length
    const refused = await reload(dir)
    expect(refused.code).toBe(1)
    // The same sentence a start with this file would end with (exit 2).
    const why = `--certfile: can't read ${missing} (no such file)`
    expect(refused.stdout).toContain(`reload not started: ${why}`)
    await c.waitForLog(/Reload not started: --certfile/, { from })
    expect(c.log().slice(from)).toContain(`[ERROR] Reload not started: ${why}`)
    expect(c.log().slice(from)).not.toMatch(/Reloading: starting worker generation/)
    expect(await body(url)).toBe(worker)

    // Put right, the next HUP reloads as usual.
    write(conf(''))
    const fixed = await reload(dir)
    expect(fixed.code).toBe(0)
    expect(fixed.stdout).toMatch(/^reload complete: generation 1 is serving/)
    await waitFor(() => !isAlive(Number(worker)), { what: `old worker ${worker} to exit` })
    expect(await body(url)).not.toBe(worker)
    c.signal('SIGTERM')
    expect((await c.exited).code).toBe(0)
  })

  it('a reload whose workers cannot boot is abandoned: later workers, and the next HUP, start from the old settings, timeouts included', async ({
    signal,
  }) => {
    const port = await freePort()
    // Each worker says which settings it was started with, from postWorkerInit (after the app loaded).
    const conf = (workers: number, timeout: number, gracefulTimeout: number) =>
      `export default { bind: ['127.0.0.1:${port}'], workers: ${workers}, timeout: ${timeout}, gracefulTimeout: ${gracefulTimeout},\n` +
      '  postWorkerInit(worker) { worker.log.info(`Started with workers ${worker.settings.workers}, timeout ${worker.settings.timeout}, gracefulTimeout ${worker.settings.gracefulTimeout}`) } }\n'
    const { dir, write } = await withConfig(conf(2, 30, 30))
    const app = join(dir, 'app.ts')
    const goodApp = 'export default (_req: unknown, res: { end(s: string): void }) => res.end(String(process.pid))\n'
    writeFileSync(app, goodApp)
    const c = startCorral([app], { cwd: dir, env: base, signal })
    await c.untilReady()
    const started = /Started with workers (\d+), timeout (\d+), gracefulTimeout (\d+)/g
    const startedOne = new RegExp(started.source)
    expect([...c.log().matchAll(started)].map((m) => m.slice(1).join(' '))).toEqual(['2 30 30', '2 30 30'])
    const old = c.workers()

    // A bad deploy: new settings, and code that cannot load (exit 4 while booting).
    write(conf(3, 7, 3))
    writeFileSync(app, "throw new Error('broken deploy')\n")
    let from = c.log().length
    c.signal('SIGHUP')
    await c.waitForLog(/Reload abandoned: a worker of generation 1 exited with code 4/, { from })
    expect(c.log().slice(from)).toContain(
      'Reload: new workers get workers 2 -> 3, timeout 30 -> 7, gracefulTimeout 30 -> 3',
    )

    // The abandoned generation's other workers are stopped (on a slow machine one may still be
    // booting when the first fails): wait until only the old generation is left.
    await waitFor(() => c.workers().length === old.length && c.workers().every((pid) => old.includes(pid)), {
      what: 'only the old generation left',
    })
    // The code is fixed, the config file still says 3/7/3 (no HUP since). An old worker dies:
    // its replacement is of the old generation, with the old settings, and there are 2 again.
    writeFileSync(app, goodApp)
    from = c.log().length
    process.kill(old[0]!, 'SIGKILL')
    const replaced = await c.waitForLog(startedOne, { from })
    expect(replaced.slice(1).join(' ')).toBe('2 30 30')
    await waitFor(() => c.workers().length === 2 || undefined, { what: 'two workers again' })
    expect(c.log().slice(from)).not.toMatch(/Number of workers: 2 -> 3/)

    // The next HUP is re-read against the settings in force, the old ones: the same changes again, applied now.
    from = c.log().length
    const again = await hup(c)
    expect(again).toContain('Reload: new workers get workers 2 -> 3, timeout 30 -> 7, gracefulTimeout 30 -> 3')
    expect([...c.log().slice(from).matchAll(started)].map((m) => m.slice(1).join(' '))).toEqual([
      '3 7 3',
      '3 7 3',
      '3 7 3',
    ])
    c.signal('SIGTERM')
    expect((await c.exited).code).toBe(0)
  })
})

describe('a HUP whose config file is slow to read', () => {
  it('holds up no signal: a TERM sent during the read stops the master at once, and the read is dropped', async ({
    signal,
  }) => {
    const port = await freePort()
    // On a re-read, with the marker there, the file's top-level await never settles.
    const { dir } = await withConfig(
      [
        "import { existsSync } from 'node:fs'",
        "if (existsSync(new URL('./slow', import.meta.url))) await new Promise(() => {})",
        `export default { bind: ['127.0.0.1:${port}'], workers: 1 }`,
        '',
      ].join('\n'),
    )
    const c = startCorral([APP], { cwd: dir, env: base, signal })
    await c.untilReady()
    writeFileSync(join(dir, 'slow'), '')
    const from = c.log().length
    c.signal('SIGHUP')
    await c.waitForLog(/Handling signal: hup/, { from })
    c.signal('SIGTERM')
    expect((await c.exited).code).toBe(0)
    const log = c.log().slice(from)
    // The TERM was handled while the read was still pending: before the read gave up, if it ever did.
    const term = log.indexOf('Handling signal: term')
    const gaveUp = log.indexOf('still loading after')
    expect(term).toBeGreaterThan(-1)
    expect(gaveUp === -1 || gaveUp > term, log).toBe(true)
    expect(log).not.toMatch(/Reloading: starting worker generation/)
  })
})
