// corral as a user gets it: the packed tarball installed into a fresh app
// beside Express, then run with the app's own Node (24 and 22 LTS); and into
// a project made by `npm init -y`, which npm 11 makes "type": "commonjs".
// Packages come from the npm cache `npm ci` filled, at the versions this
// repository locks (--prefer-offline: only their metadata may be fetched).
import { execFileSync, spawnSync, type SpawnSyncReturns } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { freePort, killAll, ROOT, startCorral } from './helpers/corral.ts'
import { ensureNode22, ensureOldestNode } from './helpers/node22.ts'
import { packCorral } from './helpers/pack.ts'

const version = (name: string) =>
  (JSON.parse(readFileSync(`${ROOT}node_modules/${name}/package.json`, 'utf8')) as { version: string }).version
const pkg = JSON.parse(readFileSync(`${ROOT}package.json`, 'utf8')) as { version: string }

let scratch: string
let tarball: string

beforeAll(async () => {
  scratch = mkdtempSync(join(tmpdir(), 'corral-package-'))
  tarball = await packCorral(scratch)
}, 300_000)
afterAll(() => rmSync(scratch, { recursive: true, force: true }))
afterEach(killAll)

/** Runs a command with `node` on PATH being the given binary, as in a shell where that Node is installed. */
function run(node: string, cwd: string, cmd: string, args: string[]): SpawnSyncReturns<string> {
  return spawnSync(cmd, args, {
    cwd,
    encoding: 'utf8',
    timeout: 120_000,
    env: { ...process.env, PATH: `${dirname(node)}:${process.env.PATH}`, npm_config_update_notifier: 'false' },
  })
}

/**
 * A fresh app with the given packages installed from the cache: a `"type":
 * "module"` one, or, with `npmInit`, whatever `npm init -y` makes.
 */
function newApp(
  node: string,
  name: string,
  packages: string[],
  { npmInit = false } = {},
): { dir: string; install: SpawnSyncReturns<string> } {
  const dir = join(scratch, name)
  mkdirSync(dir)
  if (!npmInit) writeFileSync(join(dir, 'package.json'), JSON.stringify({ name, private: true, type: 'module' }))
  else if (run(node, dir, 'npm', ['init', '-y']).status !== 0) throw new Error(`npm init -y failed in ${dir}`)
  const install = run(node, dir, 'npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', ...packages])
  if (install.status !== 0) throw new Error(`npm install failed:\n${install.stderr}`)
  return { dir, install }
}

function sizeOf(path: string): number {
  const st = statSync(path)
  if (!st.isDirectory()) return st.size
  return readdirSync(path).reduce((sum, name) => sum + sizeOf(join(path, name)), 0)
}

async function get(port: number, path: string): Promise<string> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`)
  return `${res.status} ${await res.text()}`
}

it('installs alone in at most 15 MB of node_modules, with no warnings', () => {
  const { dir, install } = newApp(process.execPath, 'alone', [tarball])
  expect(install.stderr).toBe('')
  const installed = readdirSync(join(dir, 'node_modules')).filter((n) => !n.startsWith('.'))
  expect(installed).not.toContain('effect')
  expect(sizeOf(join(dir, 'node_modules'))).toBeLessThanOrEqual(15 * 1024 * 1024)
  const files = readdirSync(join(dir, 'node_modules/corral'))
  expect(files).toEqual(expect.arrayContaining(['LICENSE', 'README.md', 'spec', 'examples', 'dist', 'bin']))
  expect(files).not.toContain('src')
})

const versions = [
  ['24', () => process.execPath],
  ['22 LTS', ensureNode22],
] as const

describe.each(versions)('installed, on Node %s', (_, nodeBinary) => {
  let node: string
  let app: string
  const bin = () => join(app, 'node_modules/corral/bin/corral.js')

  beforeAll(() => {
    node = nodeBinary()
    const major = execFileSync(node, ['-p', 'process.versions.node'], { encoding: 'utf8' }).split('.')[0]
    const { dir, install } = newApp(node, `app-node${major}`, [
      tarball,
      `express@${version('express')}`,
      `typescript@${version('typescript')}`,
      `@types/node@${version('@types/node')}`,
      // corral/machines runs on the app's own xstate (an optional peer dependency).
      `xstate@${version('xstate')}`,
    ])
    app = dir
    expect(install.stderr).toBe('')
  }, 180_000)

  it('npx corral --version', () => {
    const r = run(node, app, 'npx', ['corral', '--version'])
    expect(r.stderr).toBe('')
    expect(r.stdout).toBe(`corral ${pkg.version}\n`)
  })

  /** Writes the app file, serves it with one worker and answers `path`. */
  async function serve(file: string, source: string, path: string): Promise<string> {
    writeFileSync(join(app, file), source)
    const port = await freePort()
    const corral = startCorral(['-w', '1', '-b', `127.0.0.1:${port}`, file], { node, bin: bin(), cwd: app })
    await corral.untilReady()
    return get(port, path)
  }

  it('serves an Express app.js', async () => {
    const source =
      "import express from 'express'\nconst app = express()\napp.get('/', (req, res) => res.send('express here'))\nexport default app\n"
    expect(await serve('app.js', source, '/')).toBe('200 express here')
  })

  it('serves a .ts app', async () => {
    const source =
      "import type { IncomingMessage, ServerResponse } from 'node:http'\nexport default (req: IncomingMessage, res: ServerResponse): void => void res.end(`ts ${req.url}`)\n"
    expect(await serve('typed.ts', source, '/x')).toBe('200 ts /x')
  })

  it('reads a config that imports defineConfig (ESM) and one that requires it (CommonJS)', () => {
    writeFileSync(
      join(app, 'esm.config.mjs'),
      "import { defineConfig } from 'corral'\nexport default defineConfig({ timeout: 7 })\n",
    )
    writeFileSync(
      join(app, 'cjs.config.cjs'),
      "const { defineConfig } = require('corral')\nmodule.exports = defineConfig({ timeout: 9 })\n",
    )
    for (const [file, timeout] of [
      ['esm.config.mjs', '7'],
      ['cjs.config.cjs', '9'],
    ] as const) {
      const r = run(node, app, node, [bin(), '--print-config', '-c', file])
      expect(r.stderr).toBe('')
      expect(r.stdout).toMatch(new RegExp(`^timeout +${timeout} +config file ${file.replace('.', '\\.')}$`, 'm'))
    }
  })

  it('corral/machines: the master statechart runs on the app xstate, by import and by require', () => {
    const run = (file: string, source: string) => {
      writeFileSync(join(app, file), source)
      const r = spawnSync(node, [file], { cwd: app, encoding: 'utf8' })
      expect(r.stderr).toBe('')
      return r.stdout
    }
    const body =
      'const actor = createActor(masterMachine, { input: { settings: { workers: 2, timeout: 30, gracefulTimeout: 30 }, upgrade: "manual", now: 0 } })\n' +
      'const commands = []\nactor.on("*", (c) => commands.push(c.type))\nactor.start()\n' +
      'console.log(JSON.stringify({ state: actor.getSnapshot().value, commands }))\n'
    const esm = run(
      'machine.mjs',
      `import { createActor } from 'xstate'\nimport { masterMachine } from 'corral/machines'\n${body}`,
    )
    const cjs = run(
      'machine.cjs',
      `const { createActor } = require('xstate')\nconst { masterMachine } = require('corral/machines')\n${body}`,
    )
    // The launch spawns its first worker alone; the second once that one is ready.
    expect(JSON.parse(esm)).toMatchObject({ commands: ['spawnWorker'] })
    expect(cjs).toBe(esm)
  })

  it('type-checks a typed config under strict nodenext with exactOptionalPropertyTypes; a misspelt setting is an error', {
    timeout: 120_000,
  }, () => {
    const tsconfig = {
      compilerOptions: {
        strict: true,
        module: 'nodenext',
        moduleResolution: 'nodenext',
        exactOptionalPropertyTypes: true,
        noEmit: true,
        types: ['node'],
      },
      include: ['corral.config.ts', 'misspelt.config.ts'],
    }
    writeFileSync(join(app, 'tsconfig.json'), JSON.stringify(tsconfig))
    const config = (settings: string) =>
      `import { defineConfig, type Server } from 'corral'\n` +
      `export default defineConfig({\n  ${settings},\n` +
      `  onStarting(server: Server) {\n    server.log.info(\`starting \${server.numWorkers} workers\`)\n  },\n})\n`
    writeFileSync(join(app, 'corral.config.ts'), config("workers: 2, bind: ['127.0.0.1:0'], logLevel: 'debug'"))
    writeFileSync(join(app, 'misspelt.config.ts'), config('wokers: 2'))
    // One tsc run for both (it is the slow part): errors in the misspelt file only.
    const tsc = run(node, app, 'npx', ['tsc', '-p', '.'])
    expect(tsc.stderr).toBe('')
    expect(tsc.stdout.trim().split('\n')).toEqual([
      expect.stringMatching(/^misspelt\.config\.ts\(3,3\): error TS\d+: .*'wokers'.*'workers'/),
    ])
    expect(tsc.status).not.toBe(0)
  })
})

describe.each(versions)('in a project made by npm init -y (CommonJS), on Node %s', (_, nodeBinary) => {
  let node: string
  let app: string
  const bin = () => join(app, 'node_modules/corral/bin/corral.js')

  beforeAll(() => {
    node = nodeBinary()
    const major = execFileSync(node, ['-p', 'process.versions.node'], { encoding: 'utf8' }).split('.')[0]
    const { dir, install } = newApp(node, `init-node${major}`, [tarball], { npmInit: true })
    app = dir
    expect(install.stderr).toBe('')
    expect(JSON.parse(readFileSync(join(app, 'package.json'), 'utf8'))).toMatchObject({ type: 'commonjs' })
  }, 180_000)

  /** Serves the app file with one worker until it is ready; returns the port. */
  async function serve(file: string): Promise<number> {
    const port = await freePort()
    const corral = startCorral(['-w', '1', '-b', `127.0.0.1:${port}`, file], { node, bin: bin(), cwd: app })
    await corral.untilReady()
    expect(corral.log()).not.toMatch(/Warning|Error/)
    return port
  }

  it("serves a TypeScript app written with import/export, with the README's own corral.config.ts", async () => {
    // The README's config as it is, but for its address (a free port here) and 2 workers.
    const readme = readFileSync(`${ROOT}README.md`, 'utf8')
    const config = /```ts\n(\/\/ corral\.config\.ts\n[\s\S]*?\n)```/.exec(readme)?.[1]
    expect(config).toContain("import { defineConfig } from 'corral'")
    const port = await freePort()
    writeFileSync(
      join(app, 'corral.config.ts'),
      config!.replace("bind: ['0.0.0.0:8000']", `bind: ['127.0.0.1:${port}']`).replace('workers: 4', 'workers: 2'),
    )
    writeFileSync(
      join(app, 'greeting.ts'),
      'export const greeting = (name: string): string => `hello ${name} from ${import.meta.filename.split("/").at(-1)}`\n',
    )
    writeFileSync(
      join(app, 'app.ts'),
      "import type { IncomingMessage, ServerResponse } from 'node:http'\nimport { greeting } from './greeting.ts'\n\n" +
        'export default (req: IncomingMessage, res: ServerResponse): void => void res.end(greeting(String(req.url)))\n',
    )
    try {
      const corral = startCorral(['app.ts'], { node, bin: bin(), cwd: app })
      expect((await corral.untilReady()).workers).toBe(2)
      expect(corral.log()).toContain('Config file: corral.config.ts')
      expect(corral.log()).toContain('starting 2 workers') // the config's onStarting hook ran
      expect(corral.log()).not.toMatch(/Warning|Error/)
      expect(await get(port, '/ts')).toBe('200 hello /ts from greeting.ts')
    } finally {
      rmSync(join(app, 'corral.config.ts'))
    }
  })

  it('a .ts file without import/export stays CommonJS', async () => {
    writeFileSync(
      join(app, 'legacy.ts'),
      "const { basename } = require('node:path')\n" +
        'module.exports = (req: unknown, res: { end(s: string): void }): void => res.end(basename(__filename))\n',
    )
    expect(await get(await serve('legacy.ts'), '/')).toBe('200 legacy.ts')
  })

  it('finds corral.config.{ts,mts,cts,js,mjs,cjs}; two at once is an error; --no-config reads none', () => {
    const esm = (timeout: number) =>
      `import { defineConfig } from 'corral'\nexport default defineConfig({ timeout: ${timeout} })\n`
    const cjs = (timeout: number) =>
      `const { defineConfig } = require('corral')\nmodule.exports = defineConfig({ timeout: ${timeout} })\n`
    // In this project .js is CommonJS: written with require, as Node reads it.
    const files = { ts: esm(41), mts: esm(42), cts: cjs(43), js: cjs(44), mjs: esm(45), cjs: cjs(46) }
    const printConfig = (cwd: string, ...args: string[]) => run(node, cwd, node, [bin(), '--print-config', ...args])
    for (const [ext, text] of Object.entries(files)) {
      const dir = join(app, `config-${ext}`)
      mkdirSync(dir)
      writeFileSync(join(dir, `corral.config.${ext}`), text)
      const r = printConfig(dir)
      expect(r.stderr).toBe('')
      expect(r.stdout).toMatch(
        new RegExp(`^timeout +${text.match(/\d+/)![0]} +config file corral\\.config\\.${ext}$`, 'm'),
      )
    }
    const two = join(app, 'config-two')
    mkdirSync(two)
    writeFileSync(join(two, 'corral.config.ts'), files.ts)
    writeFileSync(join(two, 'corral.config.cjs'), files.cjs)
    const both = printConfig(two)
    expect(both.status).toBe(2)
    expect(both.stderr).toMatch(/^corral: error: corral\.config\.ts and corral\.config\.cjs: more than one config file/)
    const none = printConfig(two, '--no-config')
    expect(none.stderr).toBe('')
    expect(none.stdout).toMatch(/^timeout +30 +default$/m)
    expect(none.stdout).toMatch(/^noConfig +true +command line$/m)
  })

  it('serves an example copied out of the installed package, as the README says', async () => {
    run(node, app, 'cp', ['node_modules/corral/examples/hello.ts', '.'])
    expect(await get(await serve('hello.ts'), '/')).toMatch(/^200 Hello from corral worker \d+\n$/)
  })
})

it('on Node 22.12, which strips no types, a .ts config or app is one line naming the Node that runs it', {
  timeout: 180_000,
}, () => {
  const node = ensureOldestNode()
  const { dir } = newApp(node, 'oldest-node', [tarball], { npmInit: true })
  const bin = join(dir, 'node_modules/corral/bin/corral.js')
  writeFileSync(
    join(dir, 'corral.config.ts'),
    "import { defineConfig } from 'corral'\nexport default defineConfig({})\n",
  )
  writeFileSync(join(dir, 'app.ts'), 'export default (req: unknown, res: { end(): void }): void => res.end()\n')
  const why = 'Node v22.12.0 runs no TypeScript; Node 22.18 or later does'
  const config = run(node, dir, node, [bin, '--print-config'])
  expect(config.status).toBe(2)
  expect(config.stderr.split('\n')[0]).toBe(
    `corral: error: corral.config.ts: ${why} (or NODE_OPTIONS=--experimental-strip-types), else write it in JavaScript`,
  )
  const app = run(node, dir, node, [bin, '--no-config', '-w', '1', '-b', '127.0.0.1:0', 'app.ts'])
  expect(app.status).toBe(4)
  expect(app.stderr.trimEnd().split('\n')).toEqual([
    expect.stringContaining(`[ERROR] App failed to load: ${join(dir, 'app.ts')}: ${why}`),
  ])
})

/** The machine's own Node, the first on PATH outside node_modules (the pinned Node 24 lives there). */
const systemNode = process.env
  .PATH!.split(':')
  .filter((dir) => !dir.includes('node_modules'))
  .map((dir) => join(dir, 'node'))
  .find((path) => existsSync(path))
const systemVersion = systemNode && execFileSync(systemNode, ['--version'], { encoding: 'utf8' }).trim()

it.skipIf(!systemVersion || Number(systemVersion.slice(1).split('.')[0]) >= 22)(
  `on an older Node (this machine's ${systemVersion}) says which Node it needs`,
  () => {
    const r = spawnSync(systemNode!, [join(scratch, 'alone/node_modules/corral/bin/corral.js'), '--version'], {
      encoding: 'utf8',
    })
    expect(r.status).toBe(1)
    expect(r.stderr).toBe(`corral: needs Node.js 22.12 or later (22 LTS, 24 LTS or newer); this is ${systemVersion}\n`)
  },
)
