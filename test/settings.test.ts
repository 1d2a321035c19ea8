import { availableParallelism } from 'node:os'
import { describe, expect, it } from 'vitest'
import { fc, test } from '@fast-check/vitest'
import { helpText, parseArgs, usageError } from '../src/config/command-line.ts'
import { bindToString, parseBind, type Bind } from '../src/net/binds.ts'
import { registry, type Settings } from '../src/config/registry.ts'
import { defaults, resolveSettings } from '../src/config/resolve.ts'
import { SECTIONS } from '../src/config/setting-spec.ts'

function settingsOf(argv: string[], env: NodeJS.ProcessEnv = {}): Settings {
  const r = parseArgs(argv, env)
  if (!r.ok) throw new Error(`expected success, got:\n${r.errors.join('\n')}`)
  return r.settings
}

function errorsOf(argv: string[], env: NodeJS.ProcessEnv = {}): string[] {
  const r = parseArgs(argv, env)
  if (r.ok) throw new Error(`expected errors, got ${JSON.stringify(r.settings)}`)
  return r.errors
}

describe('registry', () => {
  it('defaults validate and have the documented values', () => {
    // Settings added later pin their own defaults in their own tests.
    expect(defaults()).toMatchObject({
      bind: ['127.0.0.1:8000'],
      workers: availableParallelism(),
      timeout: 30,
      gracefulTimeout: 30,
      logLevel: 'info',
      pid: undefined,
      name: undefined,
      printConfig: false,
      checkConfig: false,
      help: false,
      version: false,
    })
  })

  it('names, flags and sections are consistent', () => {
    const flags = registry.flatMap((s) => s.flags)
    expect(new Set(flags).size).toBe(flags.length)
    expect(new Set(registry.map((s) => s.name)).size).toBe(registry.length)
    for (const s of registry) {
      expect(SECTIONS).toContain(s.section)
      // Server hooks are functions, set in a config file only: no flags (spec/hooks.md).
      if (s.type === 'hook') expect(s.flags).toEqual([])
      else expect(s.flags.some((f) => f.startsWith('--'))).toBe(true)
      expect(s.doc.length).toBeGreaterThan(0)
      expect(s.type === 'boolean' || s.type === 'hook' ? s.meta === undefined : s.meta !== undefined).toBe(true)
    }
  })

  it('the workers doc explains one worker per core', () => {
    const workers = registry.find((s) => s.name === 'workers')
    expect(workers?.doc).toContain('2 × cores + 1')
  })

  it('later layers win, and each error names the layer that set the value', () => {
    const r = resolveSettings(
      [
        { values: { workers: 3, timeout: 'soon' }, label: (s) => `corral.config.ts: ${s.name}` },
        { values: { workers: 5 }, label: (s) => s.flags.join('/') },
      ],
      {},
    )
    expect(r).toEqual({
      ok: false,
      errors: ['corral.config.ts: timeout: expected a whole number of seconds (0 or more), got "soon"'],
    })
    const ok = resolveSettings([
      { values: { workers: 3 }, label: () => 'a' },
      { values: { workers: 5 }, label: () => 'b' },
    ])
    expect(ok.ok && ok.settings.workers).toBe(5)
  })

  it('rejects a key that is not a setting, with a suggestion', () => {
    const r = resolveSettings([{ values: { wrokers: 3 }, label: () => 'x' }])
    expect(r).toEqual({ ok: false, errors: ['unknown setting "wrokers" (did you mean workers?)'] })
  })

  it('reports every problem, one line each', () => {
    const r = resolveSettings([
      { values: { workers: 0, timeout: -1, logLevel: 'loud', bind: [] }, label: (s) => s.name },
    ])
    expect(r.ok).toBe(false)
    if (!r.ok) {
      expect(r.errors).toHaveLength(4)
      for (const e of r.errors) expect(e).not.toContain('\n')
      expect(r.errors).toContain('bind: expected at least one address, got []')
    }
  })
})

describe('parseArgs: flag shapes', () => {
  it.each([
    [['-w', '2', 'app.ts']],
    [['-w2', 'app.ts']],
    [['-w=2', 'app.ts']],
    [['--workers', '2', 'app.ts']],
    [['--workers=2', 'app.ts']],
    [['app.ts', '--workers', '2']],
  ])('%j sets workers to 2', (argv) => {
    const r = parseArgs(argv, {})
    expect(r).toMatchObject({ ok: true, app: 'app.ts', settings: { workers: 2 } })
  })

  it('collects a repeated list flag in order, replacing the default', () => {
    const s = settingsOf(['-b', '0.0.0.0:80', '--bind=unix:/tmp/c.sock', '-bfd://3', '--bind', '[::1]:8080', 'app.ts'])
    expect(s.bind).toEqual(['0.0.0.0:80', 'unix:/tmp/c.sock', 'fd://3', '[::1]:8080'])
  })

  it('sets boolean flags, also clustered', () => {
    expect(settingsOf(['--check-config', 'app.ts']).checkConfig).toBe(true)
    const s = settingsOf(['-hv'])
    expect([s.help, s.version]).toEqual([true, true])
  })

  it('takes the value of a short flag at the end of a cluster', () => {
    const s = settingsOf(['-vw', '3'])
    expect([s.version, s.workers]).toEqual([true, 3])
  })

  it('reads every other setting', () => {
    const s = settingsOf([
      '-t',
      '0',
      '--graceful-timeout',
      '5',
      '-p',
      '/run/c.pid',
      '-n',
      'shop',
      '--log-level',
      'debug',
      'app.ts:handler',
    ])
    expect(s).toMatchObject({ timeout: 0, gracefulTimeout: 5, pid: '/run/c.pid', name: 'shop', logLevel: 'debug' })
  })

  it('the last occurrence of a single-valued flag wins', () => {
    expect(settingsOf(['-w', '2', '-w', '5', 'app.ts']).workers).toBe(5)
  })

  it('-- ends the options', () => {
    const r = parseArgs(['-w', '2', '--', '--odd-name.ts'], {})
    expect(r).toMatchObject({ ok: true, app: '--odd-name.ts' })
  })

  it('APP is required unless --help or --version is given', () => {
    expect(errorsOf([])).toEqual(['missing APP (the module to serve, e.g. app.ts or app.ts:handler)'])
    expect(parseArgs(['--help'], {})).toMatchObject({ ok: true, app: undefined, settings: { help: true } })
    expect(parseArgs(['-v'], {})).toMatchObject({ ok: true, app: undefined, settings: { version: true } })
  })

  it('--help answers even when the rest is wrong', () => {
    expect(parseArgs(['--help', '-w', 'abc'], { WEB_CONCURRENCY: 'lots' })).toMatchObject({
      ok: true,
      settings: { help: true },
    })
  })

  it('only one APP', () => {
    expect(errorsOf(['a.ts', 'b.ts'])).toEqual(['unexpected argument "b.ts": only one APP can be given'])
  })
})

describe('parseArgs: workers default', () => {
  it('is os.availableParallelism() without WEB_CONCURRENCY', () => {
    expect(settingsOf(['app.ts'], {}).workers).toBe(availableParallelism())
  })

  it('is WEB_CONCURRENCY when set', () => {
    expect(settingsOf(['app.ts'], { WEB_CONCURRENCY: '7' }).workers).toBe(7)
  })

  it('the flag beats WEB_CONCURRENCY, even an invalid one', () => {
    expect(settingsOf(['-w', '3', 'app.ts'], { WEB_CONCURRENCY: 'many' }).workers).toBe(3)
  })

  it.each([
    ['many', '"many"'],
    ['0', '0'],
    ['-2', '-2'],
    ['1.5', '"1.5"'],
  ])('an invalid WEB_CONCURRENCY=%s is an error naming it', (value, shown) => {
    expect(errorsOf(['app.ts'], { WEB_CONCURRENCY: value })).toEqual([
      `WEB_CONCURRENCY: expected a positive integer, got ${shown}`,
    ])
  })
})

describe('parseArgs: errors', () => {
  it.each([
    [['-w', 'abc'], '-w/--workers: expected a positive integer, got "abc"'],
    [['--workers=0'], '-w/--workers: expected a positive integer, got 0'],
    [['--workers='], '-w/--workers: expected a positive integer, got ""'],
    [['-t', '-1'], '-t/--timeout: expected a whole number of seconds (0 or more), got -1'],
    [['--graceful-timeout', 'x'], '--graceful-timeout: expected a whole number of seconds (0 or more), got "x"'],
    [['--log-level', 'loud'], '--log-level: expected one of debug, info, warning, error, critical, got "loud"'],
    [['-p', ''], '-p/--pid: expected a file path, got ""'],
    [
      ['-b', 'localhost'],
      '-b/--bind: "localhost" is not an address (expected HOST:PORT, [IPV6]:PORT, unix:PATH or fd://N)',
    ],
    [['-b', 'localhost:65536'], '-b/--bind: "localhost:65536": port must be an integer from 0 to 65535'],
    [['--bind'], 'missing value for --bind'],
    [['-b', '-w', '2'], 'missing value for -b'],
    [['--check-config=yes'], '--check-config takes no value'],
    [['--wrokers', '3'], 'unknown option --wrokers (did you mean --workers?)'],
    [['--log-levle', 'debug'], 'unknown option --log-levle (did you mean --log-level?)'],
    [['--frobnicate'], 'unknown option --frobnicate'],
    [['-x'], 'unknown option -x'],
  ])('%j → %s', (flags, message) => {
    const errors = errorsOf(['app.ts', ...flags])
    expect(errors).toEqual([message])
  })

  it('reports every problem at once, one line each', () => {
    const errors = errorsOf(['-w', 'abc', '-b', 'nope', '--nope', '-t', 'x'])
    expect(errors).toHaveLength(5)
    for (const e of errors) expect(e).not.toContain('\n')
  })

  it('usageError prefixes each line and points at --help', () => {
    expect(usageError(['one', 'two'])).toBe(
      "corral: error: one\ncorral: error: two\nTry 'corral --help' for more information.\n",
    )
  })
})

describe('helpText', () => {
  const help = helpText()

  it('starts with the usage line', () => {
    expect(help.startsWith('usage: corral [OPTIONS] APP\n')).toBe(true)
  })

  it('lists every flag under its section', () => {
    for (const s of registry.filter((r) => r.flags.length > 0)) {
      const sectionAt = help.indexOf(`\n${s.section}:\n`)
      expect(sectionAt).toBeGreaterThan(0)
      const line = `  ${s.flags.join(', ')}${s.meta === undefined ? '' : ` ${s.meta}`}`
      expect(help.indexOf(line, sectionAt)).toBeGreaterThan(sectionAt)
    }
  })

  it('shows defaults and stays within 80 columns', () => {
    expect(help.replace(/\s+/g, ' ')).toContain('[default: 127.0.0.1:8000, or 0.0.0.0:$PORT when PORT is set]')
    expect(help).toContain('[default: $WEB_CONCURRENCY, else the number of CPUs]')
    for (const line of help.split('\n')) expect(line.length).toBeLessThanOrEqual(80)
  })
})

describe('bind addresses', () => {
  it.each<[string, Bind]>([
    ['127.0.0.1:8000', { kind: 'tcp', host: '127.0.0.1', port: 8000 }],
    ['0.0.0.0:0', { kind: 'tcp', host: '0.0.0.0', port: 0 }],
    ['localhost:65535', { kind: 'tcp', host: 'localhost', port: 65535 }],
    ['api.example.com:443', { kind: 'tcp', host: 'api.example.com', port: 443 }],
    ['tcp://web_1:80', { kind: 'tcp', host: 'web_1', port: 80 }],
    ['http://127.0.0.1:8000', { kind: 'tcp', host: '127.0.0.1', port: 8000 }],
    ['[::1]:8000', { kind: 'tcp', host: '::1', port: 8000 }],
    ['[::]:80', { kind: 'tcp', host: '::', port: 80 }],
    ['unix:/run/corral.sock', { kind: 'unix', path: '/run/corral.sock' }],
    ['unix:relative.sock', { kind: 'unix', path: 'relative.sock' }],
    ['fd://3', { kind: 'fd', fd: 3 }],
  ])('parses %s', (text, bind) => {
    expect(parseBind(text)).toEqual(bind)
  })

  it.each([
    ['localhost', 'is not an address'],
    ['', 'is not an address'],
    [':8000', 'is not an address'],
    ['bad host:80', 'is not an address'],
    ['host:', 'port must be'],
    ['host:http', 'port must be'],
    ['host:65536', 'port must be'],
    ['host:-1', 'port must be'],
    ['::1:8000', 'put an IPv6 address in brackets'],
    ['[::1]8000', 'is not an address'],
    ['[nope]:80', 'is not an IPv6 address'],
    ['unix:', 'unix socket path is empty'],
    ['fd://', 'expected fd://N'],
    ['fd://-1', 'expected fd://N'],
    ['fd://three', 'expected fd://N'],
  ])('rejects %j', (text, reason) => {
    expect(() => parseBind(text)).toThrow(reason)
  })

  it.each<[Bind, string]>([
    [{ kind: 'tcp', host: '127.0.0.1', port: 8000 }, '127.0.0.1:8000'],
    [{ kind: 'tcp', host: '::1', port: 8000 }, '[::1]:8000'],
    [{ kind: 'unix', path: '/path' }, 'unix:/path'],
    [{ kind: 'fd', fd: 3 }, 'fd://3'],
  ])('prints %j as %s', (bind, text) => {
    expect(bindToString(bind)).toBe(text)
  })

  const tcpBind = fc.record({
    kind: fc.constant('tcp' as const),
    host: fc.oneof(fc.ipV4(), fc.ipV6(), fc.domain()),
    port: fc.integer({ min: 0, max: 65535 }),
  })

  test.prop([tcpBind])(
    "bindToString, and a listener's logged http:// address, parse back to the same tcp bind",
    (bind) => {
      expect(parseBind(bindToString(bind))).toEqual(bind)
      expect(parseBind(`http://${bindToString(bind)}`)).toEqual(bind)
    },
  )

  test.prop([
    fc.oneof(
      fc.record({ kind: fc.constant('unix' as const), path: fc.string({ minLength: 1 }) }),
      fc.record({ kind: fc.constant('fd' as const), fd: fc.nat() }),
    ),
  ])('unix and fd binds round-trip too', (bind) => {
    expect(parseBind(bindToString(bind))).toEqual(bind)
  })
})
