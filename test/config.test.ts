// The configuration sources as a user meets them, through the real binary:
// precedence of defaults < config file < CORRAL_CMD_ARGS < command line,
// --print-config, --check-config, and every kind of bad input (exit 2, one
// line naming the source, never only a stack).
import { spawn } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { BIN, ROOT, fixture } from './helpers/corral.ts'

const APP = fixture('app-pid.ts')
const tmp = mkdtempSync(join(tmpdir(), 'corral-config-'))
afterAll(() => rmSync(tmp, { recursive: true, force: true }))

let dirs = 0
/** A fresh directory holding the given files (name → contents). */
function dirWith(files: Record<string, string>): string {
  const dir = join(tmp, String(++dirs))
  mkdirSync(dir)
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text)
  return dir
}

interface Run {
  code: number | null
  stdout: string
  stderr: string
}

/** Runs corral to completion (these invocations all exit by themselves). */
function corral(
  args: string[],
  { cwd = ROOT, env = {} }: { cwd?: string; env?: NodeJS.ProcessEnv } = {},
): Promise<Run> {
  return new Promise((resolve, reject) => {
    const base = { ...process.env }
    delete base['WEB_CONCURRENCY']
    delete base['CORRAL_CMD_ARGS']
    const child = spawn(process.execPath, [BIN, ...args], {
      cwd,
      env: { ...base, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()))
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()))
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`corral ${args.join(' ')} did not exit; stderr:\n${stderr}`))
    }, 20_000)
    child.on('exit', (code) => {
      clearTimeout(timer)
      resolve({ code, stdout, stderr })
    })
  })
}

/** --print-config's lines as name → [value, source]. */
function printed(stdout: string): Map<string, [string, string]> {
  const rows = new Map<string, [string, string]>()
  for (const line of stdout.trimEnd().split('\n')) {
    const m = line.match(/^(\S+)\s+(.+?)\s{2,}(\S.*)$/)
    if (m) rows.set(m[1]!, [m[2]!, m[3]!])
  }
  return rows
}

const config = (body: string) => `export default ${body}\n`

describe('precedence: defaults < config file < CORRAL_CMD_ARGS < command line', () => {
  it('each setting comes from the highest source that sets it, and --print-config says which', async () => {
    const cwd = dirWith({
      'corral.config.ts': config(
        "{ workers: 3, timeout: 11, gracefulTimeout: 12, logLevel: 'warning', name: 'from-file' }",
      ),
    })
    const r = await corral(['--print-config', '--graceful-timeout', '32', '-n', 'from argv'], {
      cwd,
      env: {
        WEB_CONCURRENCY: '7',
        CORRAL_CMD_ARGS: `--timeout 21 --graceful-timeout 22 --pid "/tmp/a pid file" -b '127.0.0.1:9001'`,
      },
    })
    expect(r.stderr).toBe('')
    expect(r.code).toBe(0)
    const rows = printed(r.stdout)
    expect(rows.get('config')).toEqual(['"corral.config.ts"', 'default'])
    expect(rows.get('workers')).toEqual(['3', 'config file corral.config.ts']) // over WEB_CONCURRENCY
    expect(rows.get('logLevel')).toEqual(['"warning"', 'config file corral.config.ts'])
    expect(rows.get('timeout')).toEqual(['21', 'CORRAL_CMD_ARGS']) // over the file
    expect(rows.get('pid')).toEqual(['"/tmp/a pid file"', 'CORRAL_CMD_ARGS']) // shell quoting
    expect(rows.get('bind')).toEqual(['["127.0.0.1:9001"]', 'CORRAL_CMD_ARGS'])
    expect(rows.get('gracefulTimeout')).toEqual(['32', 'command line']) // over both
    expect(rows.get('name')).toEqual(['"from argv"', 'command line'])
    // Switches of one invocation are not settings a server runs with.
    expect(rows.has('checkConfig')).toBe(false)
    expect(rows.has('help')).toBe(false)
    // Every other setting is listed too.
    expect(rows.size).toBeGreaterThanOrEqual(12)
  })

  it('without a config file, an env-var default shows as its variable', async () => {
    const r = await corral(['--print-config'], { cwd: dirWith({}), env: { WEB_CONCURRENCY: '7' } })
    expect(r.code).toBe(0)
    const rows = printed(r.stdout)
    expect(rows.get('workers')).toEqual(['7', 'env WEB_CONCURRENCY'])
    expect(rows.get('config')).toEqual(['(none)', 'default'])
    expect(rows.get('timeout')).toEqual(['30', 'default'])
  })

  it('-c picks the file (over one in the working directory), also from CORRAL_CMD_ARGS; .mjs and CommonJS load', async () => {
    const cwd = dirWith({
      'corral.config.ts': config('{ workers: 3 }'),
      'other.mjs': config('{ workers: 4 }'),
      'legacy.cjs': 'module.exports = { workers: 5 }\n',
    })
    const fromArgv = await corral(['--print-config', '-c', 'other.mjs'], {
      cwd,
      env: { CORRAL_CMD_ARGS: '-c legacy.cjs' },
    })
    expect(printed(fromArgv.stdout).get('workers')).toEqual(['4', 'config file other.mjs'])
    expect(printed(fromArgv.stdout).get('config')).toEqual(['"other.mjs"', 'command line'])
    const fromEnv = await corral(['--print-config'], { cwd, env: { CORRAL_CMD_ARGS: '-c legacy.cjs' } })
    expect(printed(fromEnv.stdout).get('workers')).toEqual(['5', 'config file legacy.cjs'])
  })

  it('finds corral.config.mts and .js too, and a config file written with defineConfig from "corral"', async () => {
    const mts = await corral(['--print-config'], { cwd: dirWith({ 'corral.config.mts': config('{ timeout: 5 }') }) })
    expect(printed(mts.stdout).get('timeout')).toEqual(['5', 'config file corral.config.mts'])
    const js = await corral(['--print-config'], { cwd: dirWith({ 'corral.config.js': config('{ timeout: 6 }') }) })
    expect(printed(js.stdout).get('timeout')).toEqual(['6', 'config file corral.config.js'])
    // examples/ is inside the package: `import { defineConfig } from 'corral'` resolves to src/index.ts.
    const example = await corral(['--print-config', '-c', 'examples/corral.config.ts'], { env: { PORT: '8123' } })
    expect(example.stderr).toBe('')
    expect(printed(example.stdout).get('bind')).toEqual(['["127.0.0.1:8123"]', 'config file examples/corral.config.ts'])
  })
})

describe('the config file in the working directory', () => {
  it.each([
    ['ts', config('{ timeout: 41 }')],
    ['mts', config('{ timeout: 42 }')],
    ['cts', 'module.exports = { timeout: 43 }\n'],
    ['js', config('{ timeout: 44 }')],
    ['mjs', config('{ timeout: 45 }')],
    ['cjs', 'module.exports = { timeout: 46 }\n'],
  ])('corral.config.%s is found', async (ext, text) => {
    const r = await corral(['--print-config'], {
      cwd: dirWith({ 'package.json': '{"type":"module"}', [`corral.config.${ext}`]: text }),
    })
    expect(r.stderr).toBe('')
    const rows = printed(r.stdout)
    expect(rows.get('config')).toEqual([`"corral.config.${ext}"`, 'default'])
    expect(rows.get('timeout')?.[1]).toBe(`config file corral.config.${ext}`)
  })

  it('--no-config reads none of them, and says so in --print-config', async () => {
    const cwd = dirWith({ 'corral.config.ts': config('{ timeout: 41 }'), 'corral.config.cjs': 'module.exports = {}\n' })
    const r = await corral(['--print-config', '--no-config'], { cwd })
    expect(r.stderr).toBe('')
    const rows = printed(r.stdout)
    expect(rows.get('config')).toEqual(['(none)', 'default'])
    expect(rows.get('noConfig')).toEqual(['true', 'command line'])
    expect(rows.get('timeout')).toEqual(['30', 'default'])
  })

  it('-c names one when two are present', async () => {
    const cwd = dirWith({
      'corral.config.ts': config('{ timeout: 41 }'),
      'corral.config.cjs': 'module.exports = { timeout: 46 }\n',
    })
    const r = await corral(['--print-config', '-c', 'corral.config.cjs'], { cwd })
    expect(r.stderr).toBe('')
    expect(printed(r.stdout).get('timeout')).toEqual(['46', 'config file corral.config.cjs'])
  })
})

describe('--check-config uses every source', () => {
  it('exits 0 when the settings and the app are good', async () => {
    const cwd = dirWith({ 'corral.config.ts': config('{ workers: 2 }') })
    const r = await corral(['--check-config', APP], { cwd })
    expect(r.code).toBe(0)
    expect(r.stdout).toMatch(/configuration OK/)
  })

  it('exits 2 naming the config file when a setting in it is bad', async () => {
    const cwd = dirWith({ 'corral.config.ts': config("{ timeout: '30s' }") })
    const r = await corral(['--check-config', APP], { cwd })
    expect(r.code).toBe(2)
    expect(r.stderr).toContain('corral.config.ts: timeout: expected a whole number of seconds (0 or more), got "30s"')
  })

  it('exits 2 naming CORRAL_CMD_ARGS when a flag there is bad', async () => {
    const r = await corral(['--check-config', APP], { cwd: dirWith({}), env: { CORRAL_CMD_ARGS: '-w many' } })
    expect(r.code).toBe(2)
    expect(r.stderr).toContain('CORRAL_CMD_ARGS: -w/--workers: expected a positive integer, got "many"')
  })

  it('exits 4 when the settings are good but the app fails to load', async () => {
    const cwd = dirWith({ 'corral.config.ts': config('{ workers: 2 }') })
    const r = await corral(['--check-config', fixture('app-throws-at-import.ts')], { cwd })
    expect(r.code).toBe(4)
    expect(r.stderr).toMatch(/App failed to load/)
  })
})

describe('bad input: exit 2, one line per problem, never only a stack', () => {
  const cases: [string, Record<string, string>, string[], NodeJS.ProcessEnv, string[]][] = [
    [
      'an unknown key, with a suggestion',
      { 'corral.config.ts': config('{ wrokers: 3 }') },
      [],
      {},
      ['corral.config.ts: unknown setting "wrokers" (did you mean workers?)'],
    ],
    [
      'wrong types: the key, the value and what was expected, all at once',
      { 'corral.config.ts': config("{ workers: 'many', bind: '127.0.0.1:80', logLevel: 'loud', timeout: -1 }") },
      [],
      {},
      [
        'corral.config.ts: workers: expected a positive integer, got "many"',
        'corral.config.ts: bind: expected a list of addresses, got "127.0.0.1:80"',
        'corral.config.ts: logLevel: expected one of debug, info, warning, error, critical, got "loud"',
        'corral.config.ts: timeout: ',
      ],
    ],
    [
      'a file that throws at import',
      {
        'corral.config.ts':
          "const url = process.env.NO_SUCH_VAR_HERE\nif (!url) throw new Error('DATABASE_URL is not set')\nexport default {}\n",
      },
      [],
      {},
      ['corral.config.ts: failed to load: DATABASE_URL is not set (line 2)'],
    ],
    [
      'a syntax error',
      { 'corral.config.ts': 'export default { workers: 2,\n' },
      [],
      {},
      ['corral.config.ts: failed to load: ', '(line 1)'],
    ],
    [
      'an import that is missing',
      { 'corral.config.ts': "import x from './nope.ts'\nexport default x\n" },
      [],
      {},
      ['corral.config.ts: failed to load: Cannot find module'],
    ],
    [
      'no default export',
      { 'corral.config.ts': 'export const workers = 2\n' },
      [],
      {},
      ['corral.config.ts: no default export'],
    ],
    [
      'a default export that is not an object',
      { 'corral.config.ts': config('[1, 2]') },
      [],
      {},
      ['corral.config.ts: the default export must be an object of settings, got an array'],
    ],
    [
      'a command-line-only key',
      { 'corral.config.ts': config("{ config: 'x.ts', version: true }") },
      [],
      {},
      [
        'corral.config.ts: config cannot be set in a config file',
        'corral.config.ts: version cannot be set in a config file',
      ],
    ],
    [
      'a function for a setting that is not a hook',
      { 'corral.config.ts': config('{ workers: () => 3 }') },
      [],
      {},
      ['corral.config.ts: workers: expected a positive integer, got a function'],
    ],
    [
      '-c naming a file that does not exist',
      {},
      ['-c', 'prod.config.ts'],
      {},
      ['-c/--config: config file not found: prod.config.ts'],
    ],
    ['-c naming a directory', { 'dir.ts/x': '' }, ['-c', 'dir.ts'], {}, ['dir.ts: the config file is not a file']],
    [
      'an unterminated quote in CORRAL_CMD_ARGS',
      {},
      [],
      { CORRAL_CMD_ARGS: '--name "my app' },
      ['CORRAL_CMD_ARGS: unterminated double quote'],
    ],
    [
      'an unknown option in CORRAL_CMD_ARGS',
      {},
      [],
      { CORRAL_CMD_ARGS: '--wrokers 3' },
      ['CORRAL_CMD_ARGS: unknown option --wrokers (did you mean --workers?)'],
    ],
    [
      'APP in CORRAL_CMD_ARGS',
      {},
      [],
      { CORRAL_CMD_ARGS: '-w 2 other.ts' },
      ['CORRAL_CMD_ARGS: unexpected argument "other.ts": APP goes on the command line'],
    ],
  ]
  for (const [what, files, args, env, messages] of cases) {
    it(what, async () => {
      // dir.ts/x makes a directory named dir.ts.
      const dir = dirWith({})
      for (const [name, text] of Object.entries(files)) {
        const parts = name.split('/')
        if (parts.length > 1) mkdirSync(join(dir, parts[0]!), { recursive: true })
        writeFileSync(join(dir, name), text)
      }
      const r = await corral([...args, APP], { cwd: dir, env })
      expect(r.code).toBe(2)
      for (const m of messages) expect(r.stderr).toContain(m)
      expect(r.stderr).not.toMatch(/^\s+at /m)
      // One line per problem, each a corral error, then the pointer to --help.
      const lines = r.stderr.trimEnd().split('\n')
      expect(lines.at(-1)).toMatch(/Try 'corral --help'/)
      for (const line of lines.slice(0, -1)) expect(line).toMatch(/^corral: error: /)
    })
  }

  it('--help still answers when the config file is broken', async () => {
    const r = await corral(['--help'], { cwd: dirWith({ 'corral.config.ts': 'throw new Error("boom")\n' }) })
    expect(r.code).toBe(0)
    expect(r.stdout).toContain('--config')
    expect(r.stdout).toContain('--print-config')
  })
})
