// -m/--umask, --chdir, -e/--env, -n/--name and --preload, end to end: real
// masters, real workers, checked in /proc and on disk.
import { getJson as getJsonAs } from './helpers/load.ts'
import { spawnSync } from 'node:child_process'
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { BIN, ROOT, fixture, freePort, killAll, startCorral, track, waitFor } from './helpers/corral.ts'
import { parseUmask } from '../src/process/process-settings.ts'

const statusField = (pid: number, name: string) =>
  readFileSync(`/proc/${pid}/status`, 'utf8').match(new RegExp(`^${name}:[ \\t]*(.*)$`, 'm'))?.[1]
/** What `ps -o args` shows: the command line, NULs as spaces, trailing padding trimmed. */
const cmdline = (pid: number) => readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0+$/, '').replace(/\0/g, ' ')

const getJson = (url: string) => getJsonAs<{ pid: number; cwd: string; env: Record<string, string> }>(url)

function run(args: string[], cwd = ROOT) {
  const r = spawnSync(process.execPath, [BIN, ...args], { cwd, encoding: 'utf8', timeout: 15_000 })
  return { code: r.status, stdout: r.stdout, stderr: r.stderr }
}

let dir: string
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'corral-proc-'))
})
afterAll(() => rmSync(dir, { recursive: true, force: true }))
afterEach(killAll)

describe('-m/--umask', () => {
  it('reads values as gunicorn does: a leading 0 is octal, 0o/0x/0b prefixes, else decimal', () => {
    expect(parseUmask('022')).toBe(0o22)
    expect(parseUmask('0o27')).toBe(0o27)
    expect(parseUmask('0x12')).toBe(0o22)
    expect(parseUmask('18')).toBe(0o22)
    expect(parseUmask('0')).toBe(0)
    expect(parseUmask(0o77)).toBe(0o77)
    expect(parseUmask('0999')).toMatch(/expected a mask from 0 to 0777/)
    expect(parseUmask('u=rwx')).toMatch(/expected an octal mask/)
    expect(parseUmask(0o1000)).toMatch(/expected a mask from 0 to 0777/)
  })

  it('applies to the master and the workers: the unix socket file and the pidfile are created under it', async () => {
    const sock = join(dir, 'umask.sock')
    const pid = join(dir, 'umask.pid')
    const c = startCorral(['-m', '027', '-w', '2', '-b', `unix:${sock}`, '-p', pid, fixture('process-identity.ts')])
    await c.untilReady()
    await waitFor(() => existsSync(pid), { what: 'pidfile' })
    expect(statusField(c.pid, 'Umask')).toBe('0027')
    for (const w of c.workers()) expect(statusField(w, 'Umask')).toBe('0027')
    expect(statSync(sock).mode & 0o777).toBe(0o750)
    expect(statSync(pid).mode & 0o777).toBe(0o640)
  })

  it('without it the umask corral was started with is kept', async () => {
    const c = startCorral(['-w', '1', '-b', `127.0.0.1:${await freePort()}`, fixture('process-identity.ts')])
    await c.untilReady()
    const mine = statusField(process.pid, 'Umask')
    expect(statusField(c.pid, 'Umask')).toBe(mine)
    expect(statusField(c.workers()[0]!, 'Umask')).toBe(mine)
  })

  it('a bad mask is exit 2 naming the flag', () => {
    const r = run(['-m', 'rwx', fixture('process-identity.ts')])
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(
      /^corral: error: -m\/--umask: expected an octal mask such as 022 \(a leading 0 means octal\), got "rwx"$/m,
    )
  })
})

describe('--chdir', () => {
  it('the master changes directory before loading anything: APP and --pid are relative to DIR, workers work there too', async () => {
    const site = join(dir, 'site')
    mkdirSync(site, { recursive: true })
    copyFileSync(fixture('process-identity.ts'), join(site, 'app.ts'))
    const port = await freePort()
    // Started in `dir` with a relative --chdir.
    const c = startCorral(['--chdir', 'site', '-w', '1', '-b', `127.0.0.1:${port}`, '-p', 'corral.pid', 'app.ts'], {
      cwd: dir,
    })
    await c.untilReady()
    expect(readlinkSync(`/proc/${c.pid}/cwd`)).toBe(site)
    expect(readlinkSync(`/proc/${c.workers()[0]}/cwd`)).toBe(site)
    expect((await getJson(`http://127.0.0.1:${port}/`)).cwd).toBe(site)
    await waitFor(() => existsSync(join(site, 'corral.pid')), { what: 'pidfile in DIR' })
    expect(existsSync(join(dir, 'corral.pid'))).toBe(false)
  })

  it('USR2 starts the new master from where corral was started, so a relative --chdir and APP still resolve', async () => {
    const site = join(dir, 'site2')
    mkdirSync(site, { recursive: true })
    copyFileSync(fixture('process-identity.ts'), join(site, 'app.ts'))
    const port = await freePort()
    const c = startCorral(['--chdir', 'site2', '-w', '1', '-b', `127.0.0.1:${port}`, 'app.ts'], { cwd: dir })
    await c.untilReady()
    const from = c.log().length
    c.signal('SIGUSR2')
    const [, child] = (await c.waitForLog(/Re-exec: started a new master with pid (\d+)/, {
      from,
    })) as RegExpMatchArray & [string, string]
    track(Number(child))
    // The new master answers on the control socket now: the old one tells only its log.
    await c.waitForLog(/New master is ready/, { from })
    expect(readlinkSync(`/proc/${child}/cwd`)).toBe(site)
  })

  for (const [what, make, message] of [
    ['a missing directory', () => join(dir, 'nope'), /--chdir: can't use .*nope \(ENOENT\)/],
    ['a file', () => fixture('process-identity.ts'), /--chdir: .*process-identity\.ts is not a directory/],
  ] as const) {
    it(`${what} is exit 2 naming the flag, before anything starts`, () => {
      const r = run(['--chdir', make(), fixture('process-identity.ts')])
      expect(r.code).toBe(2)
      expect(r.stderr).toMatch(message)
      expect(r.stderr).not.toMatch(/Starting corral|^\s+at /m)
    })
  }
})

describe('-e/--env', () => {
  it("sets variables in the master's environment (seen by --preload) and the workers'", async () => {
    const log = join(dir, 'env-imports.log')
    const port = await freePort()
    const c = startCorral([
      '-e',
      'CORRAL_TEST_FOO=bar',
      '-e',
      'CORRAL_TEST_EMPTY=',
      '-e',
      'CORRAL_TEST_EQ=a=b',
      '-e',
      `CORRAL_TEST_IMPORT_LOG=${log}`,
      '--preload',
      '-w',
      '1',
      '-b',
      `127.0.0.1:${port}`,
      fixture('process-identity.ts'),
    ])
    await c.untilReady()
    const expected = {
      CORRAL_TEST_FOO: 'bar',
      CORRAL_TEST_EMPTY: '',
      CORRAL_TEST_EQ: 'a=b',
      CORRAL_TEST_IMPORT_LOG: log,
    }
    const answer = await getJson(`http://127.0.0.1:${port}/`)
    expect(answer.env).toEqual(expected)
    const imports = readFileSync(log, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { pid: number; env: object })
    expect(imports.find((i) => i.pid === c.pid)?.env).toEqual(expected)
  })

  for (const bad of ['FOO', '=bar']) {
    it(`-e ${bad} is exit 2 naming the flag`, () => {
      const r = run(['-e', bad, fixture('process-identity.ts')])
      expect(r.code).toBe(2)
      expect(r.stderr).toMatch(new RegExp(`^corral: error: -e/--env: expected KEY=VALUE, got "${bad}"$`, 'm'))
    })
  }
})

describe('-n/--name: process titles as ps shows them', () => {
  it('corral: master [NAME] and corral: worker [NAME], even for a name longer than the worker’s command line', async () => {
    const name = `shop-frontend-${'x'.repeat(100)}`
    const c = startCorral([
      '-n',
      name,
      '-w',
      '2',
      '-b',
      `127.0.0.1:${await freePort()}`,
      fixture('process-identity.ts'),
    ])
    await c.untilReady()
    expect(cmdline(c.pid)).toBe(`corral: master [${name}]`)
    for (const w of c.workers()) expect(cmdline(w)).toBe(`corral: worker [${name}]`)
    const ps = spawnSync('ps', ['-o', 'args=', '-p', String(c.workers()[0])], { encoding: 'utf8' })
    if (ps.status === 0) expect(ps.stdout.trim()).toBe(`corral: worker [${name}]`)
  })

  it('defaults to the APP as given', async () => {
    const c = startCorral(['-w', '1', '-b', `127.0.0.1:${await freePort()}`, 'test/fixtures/process-identity.ts'])
    await c.untilReady()
    expect(cmdline(c.pid)).toBe('corral: master [test/fixtures/process-identity.ts]')
    expect(cmdline(c.workers()[0]!)).toBe('corral: worker [test/fixtures/process-identity.ts]')
  })
})

describe('--preload', () => {
  it('a broken app stops corral with exit 4 and the reason; nothing is bound and no worker is started', async () => {
    const log = join(dir, 'broken-imports.log')
    const port = await freePort()
    const c = startCorral(['--preload', '-w', '3', '-b', `127.0.0.1:${port}`, fixture('process-broken.ts')], {
      env: { CORRAL_TEST_IMPORT_LOG: log },
    })
    expect(await c.exited).toEqual({ code: 4, signal: null })
    expect(c.log()).toMatch(/App failed to load.*\n(.*\n)*.*the app refuses to load/)
    expect(c.log()).not.toMatch(/Listening at|Booting worker/)
    // Imported once, by the master.
    expect(readFileSync(log, 'utf8').trim().split('\n')).toEqual([String(c.pid)])
  })

  it('without --preload the same app is imported by the workers (exit 4 too, after binding)', async () => {
    const log = join(dir, 'broken-imports-2.log')
    const c = startCorral(['-w', '1', '-b', `127.0.0.1:${await freePort()}`, fixture('process-broken.ts')], {
      env: { CORRAL_TEST_IMPORT_LOG: log },
    })
    expect((await c.exited).code).toBe(4)
    expect(c.log()).toMatch(/Booting worker/)
    expect(readFileSync(log, 'utf8')).not.toContain(String(c.pid))
  })

  it('a good app is imported once by the master, then again by each worker: no memory is shared', async () => {
    const log = join(dir, 'good-imports.log')
    writeFileSync(log, '')
    const c = startCorral(
      ['--preload', '-w', '2', '-b', `127.0.0.1:${await freePort()}`, fixture('process-identity.ts')],
      { env: { CORRAL_TEST_IMPORT_LOG: log } },
    )
    await c.untilReady()
    const pids = readFileSync(log, 'utf8')
      .trim()
      .split('\n')
      .map((l) => (JSON.parse(l) as { pid: number }).pid)
    expect(pids.sort()).toEqual([c.pid, ...c.workers()].sort())
    expect(c.log()).toMatch(/Preloaded .*process-identity\.ts/)
  })
})
