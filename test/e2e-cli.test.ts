// The command line as a user meets it: help, version, bad input, --check-config.
import { spawnSync } from 'node:child_process'
import { describe, expect, it } from 'vitest'
import { BIN, ROOT, fixture } from './helpers/corral.ts'

function corral(args: string[], env: NodeJS.ProcessEnv = {}) {
  const r = spawnSync(process.execPath, [BIN, ...args], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    encoding: 'utf8',
    timeout: 15_000,
  })
  return { code: r.status, stdout: r.stdout, stderr: r.stderr }
}

describe('corral CLI', () => {
  it('--version prints the version and exits 0', () => {
    const r = corral(['--version'])
    expect(r.code).toBe(0)
    expect(r.stdout).toMatch(/^corral \d+\.\d+\.\d+\n$/)
  })

  it('--help lists the options and exits 0', () => {
    const r = corral(['-h'])
    expect(r.code).toBe(0)
    for (const flag of [
      '--workers',
      '--bind',
      '--timeout',
      '--graceful-timeout',
      '--pid',
      '--name',
      '--log-level',
      '--check-config',
    ]) {
      expect(r.stdout).toContain(flag)
    }
  })

  const bad: [string[], RegExp][] = [
    [['-w', 'abc', 'app.ts'], /-w\/--workers: expected a positive integer, got "abc"/],
    [['-w', '0', 'app.ts'], /-w\/--workers/],
    [['--wrokers', '2', 'app.ts'], /unknown option --wrokers \(did you mean --workers\?\)/],
    [['-b', 'localhost', 'app.ts'], /-b\/--bind: "localhost" is not an address/],
    [['-b'], /missing value for -b/],
    [['--log-level', 'loud', 'app.ts'], /--log-level/],
    [['-t', '-5', 'app.ts'], /-t\/--timeout/],
    [['--statsd-host', 'statsd', 'app.ts'], /--statsd-host: "statsd" is not a StatsD address \(expected HOST:PORT/],
    [['--statsd-host', 'unix:/run/dsd.sock', 'app.ts'], /--statsd-host: .*Node cannot open; use HOST:PORT/],
    [['--statsd-prefix', 'my app', 'app.ts'], /--statsd-prefix: "my app": a StatsD prefix has no spaces/],
    [
      ['--dogstatsd-tags', 'env:prod|x', 'app.ts'],
      /--dogstatsd-tags: "env:prod\|x": expected tags separated by commas/,
    ],
    [[], /APP/],
  ]
  for (const [args, message] of bad) {
    it(`rejects ${JSON.stringify(args)} with exit 2 and one clear line`, () => {
      const r = corral(args)
      expect(r.code).toBe(2)
      expect(r.stderr).toMatch(message)
      expect(r.stderr).toMatch(/Try 'corral --help'/)
      expect(r.stderr).not.toMatch(/^\s+at /m)
    })
  }

  it('a bad WEB_CONCURRENCY is named in the error', () => {
    const r = corral([fixture('app-pid.ts')], { WEB_CONCURRENCY: 'lots' })
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/WEB_CONCURRENCY/)
  })

  it('--check-config exits 0 for a good app and 4 for one that throws at import', () => {
    expect(corral(['--check-config', fixture('app-pid.ts')]).code).toBe(0)
    const r = corral(['--check-config', fixture('app-throws-at-import.ts')])
    expect(r.code).toBe(4)
    expect(r.stderr).toMatch(/database URL is not set/)
  })

  it('an address already in use is a clear error, not a stack trace', async () => {
    const { createServer } = await import('node:net')
    const s = createServer()
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r))
    const { port } = s.address() as { port: number }
    try {
      const r = corral(['-b', `127.0.0.1:${port}`, fixture('app-pid.ts')])
      expect(r.code).not.toBe(0)
      expect(r.stderr).toMatch(/EADDRINUSE|in use/i)
      expect(r.stderr).not.toMatch(/^\s+at /m)
    } finally {
      s.close()
    }
  })
})
