// A newcomer's first mistakes, each answered clearly before anything is
// bound: a pidfile held by a live master or left by a dead one, a pidfile
// path that cannot be one, a syntax error in the app or the config file, a
// unix socket in a missing directory, a command taken for an app, an app
// that is not there. Also the $PORT default and the config-file log line.
import { spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { BIN, ROOT, fixture, freePort, isAlive, killAll, startCorral, waitFor } from './helpers/corral.ts'

const tmp = mkdtempSync(join(tmpdir(), 'corral-mistakes-'))
afterAll(() => rmSync(tmp, { recursive: true, force: true }))
afterEach(killAll)

let dirs = 0
/** A fresh directory holding these files. */
function dirWith(files: Record<string, string> = {}): string {
  const dir = join(tmp, String(++dirs))
  mkdirSync(dir)
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text)
  return dir
}

/** Runs corral to its end (for the cases that must stop before serving). */
function corral(args: string[], { cwd = ROOT, env = {} }: { cwd?: string; env?: NodeJS.ProcessEnv } = {}) {
  const r = spawnSync(process.execPath, [BIN, ...args], {
    cwd,
    env: { ...process.env, ...env },
    encoding: 'utf8',
    timeout: 20_000,
  })
  return { code: r.status, stdout: r.stdout, stderr: r.stderr }
}

const APP = fixture('app-pid.ts')

describe('the pidfile', () => {
  it('held by a live master: "Already running on PID N", exit 1, nothing bound, the pidfile untouched', async ({
    signal,
  }) => {
    const pidfile = join(dirWith(), 'corral.pid')
    const first = startCorral(['-w', '1', '-b', `127.0.0.1:${await freePort()}`, '-p', pidfile, APP], { signal })
    await first.untilReady()
    expect(readFileSync(pidfile, 'utf8')).toBe(`${first.pid}\n`)

    const second = corral(['-w', '1', '-b', `127.0.0.1:${await freePort()}`, '-p', pidfile, APP])
    expect(second.code).toBe(1)
    expect(second.stderr).toContain(`Already running on PID ${first.pid} (pidfile ${pidfile})`)
    expect(second.stderr).not.toMatch(/Listening at|Booting worker/)
    expect(readFileSync(pidfile, 'utf8')).toBe(`${first.pid}\n`)
    expect(isAlive(first.pid)).toBe(true)
  })

  it('naming a dead process is stale: replaced, with a warning', async ({ signal }) => {
    const pidfile = join(dirWith(), 'corral.pid')
    const dead = spawnSync('true').pid
    writeFileSync(pidfile, `${dead}\n`)
    const c = startCorral(['-w', '1', '-b', `127.0.0.1:${await freePort()}`, '-p', pidfile, APP], { signal })
    await c.untilReady()
    expect(c.log()).toContain(`[WARNING] Removed a stale pidfile ${pidfile} (${dead}: not running)`)
    expect(readFileSync(pidfile, 'utf8')).toBe(`${c.pid}\n`)
  })

  it('that is a directory, or in a missing directory, is refused before binding, leaving no stray file', () => {
    const parent = dirWith()
    const directory = join(parent, 'run')
    mkdirSync(directory)
    const isDir = corral(['-w', '1', '-p', directory, APP])
    expect(isDir.code).toBe(1)
    expect(isDir.stderr).toContain(`-p/--pid ${directory} is a directory`)
    expect(isDir.stderr).not.toMatch(/Listening at|EISDIR|^\s+at /m)
    expect(readdirSync(parent)).toEqual(['run'])
    expect(readdirSync(directory)).toEqual([])

    // A file that holds no pid (an app given to -p by mistake) is left as it is.
    const notPid = join(parent, 'app.js')
    writeFileSync(notPid, 'export default () => {}\n')
    const holdsOther = corral(['-w', '1', '-p', notPid, APP])
    expect(holdsOther.code).toBe(1)
    expect(holdsOther.stderr).toContain(`-p/--pid ${notPid} holds something other than a pid; not replacing it`)
    expect(readFileSync(notPid, 'utf8')).toBe('export default () => {}\n')

    const missing = corral(['-w', '1', '-p', join(parent, 'nowhere/corral.pid'), APP])
    expect(missing.code).toBe(1)
    expect(missing.stderr).toContain(`the directory ${join(parent, 'nowhere')} does not exist`)
    expect(missing.stderr).not.toMatch(/Listening at/)
  })
})

describe('syntax errors', () => {
  const broken = 'const greeting = "hi"\nexport default (req, res) => { res.end( }\n'

  it('in an ES module app name the file, line and column (exit 4)', async ({ signal }) => {
    const dir = dirWith({ 'app.mjs': broken })
    const c = startCorral(['-w', '1', '-b', `127.0.0.1:${await freePort()}`, 'app.mjs'], { cwd: dir, signal })
    expect((await c.exited).code).toBe(4)
    expect(c.log()).toContain(
      `App failed to load: ${join(dir, 'app.mjs')}:2:41: SyntaxError: Unexpected token '}'\n` +
        'export default (req, res) => { res.end( }\n' +
        `${' '.repeat(40)}^`,
    )
    expect(c.log()).not.toMatch(/node:internal/)
  })

  it('in a module the app imports name that module', () => {
    const dir = dirWith({ 'app.mjs': "export { default } from './lib.mjs'\n", 'lib.mjs': broken })
    const r = corral(['--check-config', 'app.mjs'], { cwd: dir })
    expect(r.code).toBe(4)
    expect(r.stderr).toContain(`${join(dir, 'lib.mjs')}:2:41: SyntaxError: Unexpected token '}'`)
  })

  it('in a config file name the file and line (exit 2)', () => {
    const dir = dirWith({ 'corral.config.mjs': 'export default {\n  workers: 2\n  timeout: 5,\n}\n' })
    const r = corral(['--print-config'], { cwd: dir })
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(
      new RegExp(
        `^corral: error: corral\\.config\\.mjs: failed to load: ${join(dir, 'corral.config.mjs')}:3:3: SyntaxError`,
      ),
    )
  })
})

describe('the command line', () => {
  it('a unix socket in a missing directory is named as missing (exit 2)', () => {
    const r = corral(['-b', 'unix:/missing/dir/app.sock', APP])
    expect(r.code).toBe(2)
    expect(r.stderr).toContain('-b/--bind unix:/missing/dir/app.sock: the directory /missing/dir does not exist')
    expect(r.stderr).not.toMatch(/EACCES|permission/)
  })

  // status, reload and stop are commands (corral ctl's shortcuts, spec/control.md); inspect opens the playground (spec/inspector.md).
  it.each(['restart', 'start'])('"corral %s" is an unknown command, not an app (exit 2)', (word) => {
    const r = corral([word])
    expect(r.code).toBe(2)
    expect(r.stderr).toContain(
      `corral: error: unknown command "${word}" (commands: upgrade, ctl, status, reload, stop, inspect)`,
    )
    expect(r.stderr).not.toMatch(/Listening at|App module not found/)
  })

  it('a file named like a command is still an app', () => {
    const dir = dirWith({ status: 'export default (req, res) => res.end()\n' })
    const r = corral(['--check-config', 'status'], { cwd: dir })
    expect(r.stderr).not.toContain('unknown command')
  })

  it('an app that does not exist is reported before anything is bound (exit 4)', () => {
    const r = corral(['-w', '1', 'no-such-app.js'])
    expect(r.code).toBe(4)
    expect(r.stderr).toContain(`App module not found: ${join(ROOT, 'no-such-app.js')}`)
    expect(r.stderr).not.toMatch(/Listening at|Booting worker/)
  })

  it('--help lists the commands, the signals and the exit codes; no help line is cut off', () => {
    const r = corral(['--help'])
    expect(r.code).toBe(0)
    expect(r.stdout).toMatch(/^Commands:\n {2}corral upgrade --pid PIDFILE/m)
    expect(r.stdout).toMatch(/^Signals \(to the master\):\n {2}HUP/m)
    expect(r.stdout).toMatch(/^Exit codes:\n {2}0 {2}stopped cleanly/m)
    expect(r.stdout.replace(/\s+/g, ' ')).toContain(
      '--ciphers STRING The TLS cipher suites allowed, in OpenSSL cipher-list format (e.g. ECDHE+AESGCM:!aNULL);',
    )
  })

  it('corral upgrade --help answers (exit 0)', () => {
    const r = corral(['upgrade', '--help'])
    expect(r.code).toBe(0)
    expect(r.stdout).toMatch(/^usage: corral upgrade --pid PIDFILE/)
    expect(r.stderr).toBe('')
  })
})

describe('where it listens, what it read', () => {
  it('with $PORT set and no bind, listens on 0.0.0.0:$PORT; the config file in use is logged', async ({ signal }) => {
    const port = await freePort()
    const dir = dirWith({ 'corral.config.mjs': 'export default { workers: 1 }\n' })
    const c = startCorral([APP], { cwd: dir, env: { PORT: String(port) }, signal })
    await c.untilReady()
    expect(c.log()).toContain(`Listening at: http://0.0.0.0:${port} (${c.pid})`)
    expect(c.log()).toContain('[INFO] Config file: corral.config.mjs')
    expect(await (await fetch(`http://127.0.0.1:${port}/`)).text()).toMatch(/^\d+$/)
  })

  it('a bad $PORT is named as the thing to fix', () => {
    const r = corral(['--print-config', APP], { env: { PORT: 'abc' } })
    expect(r.code).toBe(2)
    expect(r.stderr).toContain(
      'corral: error: $PORT (the default for -b/--bind): "0.0.0.0:abc": port must be an integer',
    )
  })

  it('a configured bind wins over $PORT', () => {
    const r = corral(['-b', '127.0.0.1:9999', '--print-config', APP], { env: { PORT: '8123' } })
    expect(r.stdout).toMatch(/^bind +\["127\.0\.0\.1:9999"\] +command line$/m)
    const unset = corral(['--print-config', APP], { env: { PORT: '' } })
    expect(unset.stdout).toMatch(/^bind +\["127\.0\.0\.1:8000"\] +default$/m)
  })
})

describe('config files in the working directory', () => {
  const errorLines = (stderr: string) => stderr.split('\n').filter((line) => line.startsWith('corral: error:'))

  it('two at once is an error naming both (exit 2), before anything is bound', () => {
    const dir = dirWith({ 'corral.config.ts': 'export default {}\n', 'corral.config.cjs': 'module.exports = {}\n' })
    const r = corral(['-w', '1', '-b', '127.0.0.1:0', APP], { cwd: dir })
    expect(r.code).toBe(2)
    expect(errorLines(r.stderr)).toEqual([
      'corral: error: corral.config.ts and corral.config.cjs: more than one config file in the working directory; remove one, or choose with -c/--config or --no-config',
    ])
    expect(r.stderr).not.toMatch(/Listening at/)
  })

  it('--no-config with -c is one line saying to give one (exit 2)', () => {
    const r = corral(['--no-config', '-c', 'corral.config.ts', '--print-config'], { cwd: dirWith() })
    expect(r.code).toBe(2)
    expect(errorLines(r.stderr)).toEqual(['corral: error: --no-config and -c/--config: give one or the other'])
  })

  it('import in a .js config of a CommonJS project says how to write it (exit 2)', () => {
    const dir = dirWith({
      'package.json': '{ "type": "commonjs" }',
      'corral.config.js': "import { cpus } from 'node:os'\nexport default { workers: cpus().length }\n",
    })
    const r = corral(['--print-config'], { cwd: dir })
    expect(r.code).toBe(2)
    expect(errorLines(r.stderr)).toEqual([
      'corral: error: corral.config.js: failed to load: Cannot use import statement outside a module (line 1); a .js file is CommonJS in this project: use require() and module.exports, or rename it to .mjs or .ts',
    ])
    expect(r.stderr).not.toMatch(/^\s+at /m)
  })
})

describe('an example served where the package installed it', () => {
  it('a .ts file inside node_modules: one line saying to copy it out (exit 4), before anything is bound', () => {
    const dir = dirWith()
    mkdirSync(join(dir, 'node_modules/corral/examples'), { recursive: true })
    writeFileSync(join(dir, 'node_modules/corral/examples/hello.ts'), readFileSync(`${ROOT}examples/hello.ts`))
    const r = corral(['-w', '1', '-b', '127.0.0.1:0', 'node_modules/corral/examples/hello.ts'], { cwd: dir })
    expect(r.code).toBe(4)
    expect(r.stderr).toMatch(
      /\[ERROR\] App failed to load: \S+\/node_modules\/corral\/examples\/hello\.ts: Node runs no TypeScript inside node_modules; copy it into your project and serve the copy: cp node_modules\/corral\/examples\/hello\.ts \. && npx corral hello\.ts\n$/,
    )
    expect(r.stderr.trimEnd().split('\n')).toHaveLength(1)
  })
})

/** Serves `app` with `workers` workers on a free port; resolves once they are ready. */
async function served(app: string, signal: AbortSignal, { cwd = ROOT, workers = 1 } = {}) {
  const port = await freePort()
  const c = startCorral(['-w', String(workers), '-b', `127.0.0.1:${port}`, app], { cwd, signal })
  await c.untilReady()
  return { c, url: `http://127.0.0.1:${port}` }
}

const SHAPES = fixture('export-shapes.mjs')
const occurrences = (text: string, part: string) => text.split(part).length - 1

describe('export shapes', () => {
  it('an async factory is awaited once per worker; what it resolves to is the app', async ({ signal }) => {
    const { c, url } = await served(`${SHAPES}:factory`, signal, { workers: 2 })
    const bodies = new Set<string>()
    await waitFor(async () => {
      bodies.add(await (await fetch(url)).text())
      return bodies.size === 2
    })
    expect([...bodies].sort()).toEqual(
      c
        .workers()
        .map((pid) => `factory (made 1) ${pid}`)
        .sort(),
    )
  })

  it('an exported http server (module.exports = http.createServer(handler)) is served, never listened on', async ({
    signal,
  }) => {
    const { c, url } = await served(fixture('export-server.cjs'), signal)
    expect(await (await fetch(url)).text()).toBe(`exported server ${c.workers()[0]}`)
    const named = await served(`${SHAPES}:server`, signal)
    expect(await (await fetch(named.url)).text()).toBe(`server ${named.c.workers()[0]}`)
  })

  it('a promise of an app is awaited', async ({ signal }) => {
    const { c, url } = await served(`${SHAPES}:promised`, signal)
    expect(await (await fetch(url)).text()).toBe(`promised ${c.workers()[0]}`)
  })

  it('a directory is served by its package.json main, a package name from node_modules', async ({ signal }) => {
    const dir = dirWith({
      'package.json': JSON.stringify({ name: 'shop', main: 'server.js', type: 'module' }),
      'server.js': 'export default (req, res) => res.end(`shop ${process.pid}`)\n',
    })
    const { c, url } = await served('.', signal, { cwd: dir })
    expect(await (await fetch(url)).text()).toBe(`shop ${c.workers()[0]}`)
    const project = dirWith({ 'package.json': '{"name":"project"}' })
    mkdirSync(join(project, 'node_modules/shop-app'), { recursive: true })
    writeFileSync(
      join(project, 'node_modules/shop-app/package.json'),
      JSON.stringify({ name: 'shop-app', main: 'main.cjs' }),
    )
    writeFileSync(join(project, 'node_modules/shop-app/main.cjs'), 'module.exports = (req, res) => res.end("pkg")\n')
    const pkg = await served('shop-app', signal, { cwd: project })
    expect(await (await fetch(pkg.url)).text()).toBe('pkg')
  })

  it.each([
    ['settings', 'an object with keys port, host'],
    ['NotAnApp', 'a class NotAnApp (not an instance of it)'],
    ['port', 'a number (3000)'],
  ])('exporting %s: one line says what was found, what to export, where the docs are (exit 4)', async (name, found) => {
    const c = startCorral(['-w', '2', '-b', `127.0.0.1:${await freePort()}`, `${SHAPES}:${name}`])
    expect((await c.exited).code).toBe(4)
    const line = `[ERROR] App failed to load: The app is ${found}: export a (req, res) handler, a fetch(Request) function, an object with fetch(), an Express, Koa, Fastify or NestJS app, an http server, or an async factory resolving to one (see spec/apps.md)\n`
    expect(occurrences(c.log(), line)).toBe(1)
    expect(c.log()).not.toMatch(/^\s+at |was sent SIGINT/m)
  })

  it('a directory with no app in it, or `corral .` without a main, is refused before anything is bound', () => {
    const dir = dirWith({ 'package.json': '{"name":"x"}', 'README.md': 'hi' })
    const r = corral(['-w', '1', '.'], { cwd: dir })
    expect(r.code).toBe(4)
    expect(r.stderr).toContain(
      `App failed to load: ${dir} is a directory with no app in it (its package.json names no existing "main" or "exports", and there is no index.js): name the module, e.g. corral server.js`,
    )
    expect(r.stderr).not.toMatch(/Listening at|Booting worker|^\s+at /m)
  })

  it('a module that exports nothing and never listens: one line once --timeout has passed (exit 4)', async () => {
    const dir = dirWith({ 'app.mjs': 'console.log("app: started, serving nothing")\n' })
    const c = startCorral(['-w', '2', '-b', `127.0.0.1:${await freePort()}`, '--timeout', '5', 'app.mjs'], { cwd: dir })
    expect((await c.exited).code).toBe(4)
    expect(
      occurrences(
        c.log(),
        'App failed to load: the module exports no app and started no server within 5 s: export a (req, res) handler, a fetch handler or a framework app, or call listen() (see spec/apps.md)',
      ),
    ).toBe(1)
  })
})

describe('load failures', () => {
  it('an app that throws at import: printed once for all workers with its file:line, no stack, no SIGINT error', async () => {
    const dir = dirWith({ 'app.mjs': 'import "node:http"\nthrow new Error("no DATABASE_URL")\n' })
    const c = startCorral(['-w', '3', '-b', `127.0.0.1:${await freePort()}`, 'app.mjs'], { cwd: dir })
    expect((await c.exited).code).toBe(4)
    expect(occurrences(c.log(), `App failed to load: ${join(dir, 'app.mjs')}:2:7: Error: no DATABASE_URL\n`)).toBe(1)
    expect(c.log()).not.toMatch(/^\s+at |Exception while loading|\[ERROR\] Worker \(pid:\d+\) was sent/m)
  })

  it('an async start-up that rejects before it listens (an unawaited bootstrap()) is a load failure, printed once (exit 4)', async () => {
    const dir = dirWith({
      'main.mjs':
        'import http from "node:http"\nasync function bootstrap() {\n  await null\n  throw new Error("cannot reach the database")\n}\nbootstrap()\n',
    })
    const c = startCorral(['-w', '2', '-b', `127.0.0.1:${await freePort()}`, 'main.mjs'], { cwd: dir })
    expect((await c.exited).code).toBe(4)
    const line = `App failed to load: ${join(dir, 'main.mjs')}:4:9: Error: cannot reach the database\n`
    expect(occurrences(c.log(), line)).toBe(1)
  })

  it('"Unexpected end of input" names the file and the line where it ends', async () => {
    const dir = dirWith({ 'app.mjs': 'export default function (req, res) {\n  res.end("x")\n' })
    const c = startCorral(['-w', '2', '-b', `127.0.0.1:${await freePort()}`, 'app.mjs'], { cwd: dir })
    expect((await c.exited).code).toBe(4)
    expect(
      occurrences(
        c.log(),
        `App failed to load: ${join(dir, 'app.mjs')}:3: SyntaxError: Unexpected end of input (the file ends before the code does)`,
      ),
    ).toBe(1)
  })
})

it('leaves no pidfile behind in the cases that stop early', () => {
  expect(existsSync(join(tmp, 'corral.pid'))).toBe(false)
})
