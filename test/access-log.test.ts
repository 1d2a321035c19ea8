// The access and error logs of a real corral: files, stdout, JSON lines, bad
// settings, and logrotate's move-then-USR1 losing no line under load.
import { spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, renameSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { BIN, ROOT, freePort, killAll, startCorral, waitFor } from './helpers/corral.ts'
import { get, startLoad } from './helpers/load.ts'

afterEach(killAll)
const dir = mkdtempSync(join(tmpdir(), 'corral-logs-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

const HELLO = `${ROOT}examples/hello.ts`
const lines = (path: string) => (existsSync(path) ? readFileSync(path, 'utf8').split('\n').filter(Boolean) : [])
let n = 0
const tmp = (name: string) => join(dir, `${++n}-${name}`)

async function start(args: string[], signal: AbortSignal) {
  const port = await freePort()
  const corral = startCorral(['-b', `127.0.0.1:${port}`, ...args, HELLO], { signal })
  return { corral, url: `http://127.0.0.1:${port}` }
}

describe('--access-logfile and --error-logfile', () => {
  it('a file gets one line per request from every worker; the error log gets master and worker lines', async ({
    signal,
  }) => {
    const access = tmp('access.log')
    const error = tmp('error.log')
    const { corral, url } = await start(['-w', '2', '--access-logfile', access, '--error-logfile', error], signal)
    await waitFor(() => lines(error).some((l) => l.includes('Ready: 2 worker')), { what: 'ready in the error log' })
    for (let i = 0; i < 20; i++) await get(`${url}/r/${i}`)
    corral.signal('SIGTERM')
    expect((await corral.exited).code).toBe(0)

    const got = lines(access)
    expect(got).toHaveLength(20)
    for (const line of got)
      expect(line).toMatch(/^127\.0\.0\.1 - - \[[^\]]+\] "GET \/r\/\d+ HTTP\/1\.1" 200 \d+ "-" "-"$/)
    const errorLog = lines(error)
    const pids = new Set(errorLog.map((l) => /^\[[^\]]+\] \[(\d+)\]/.exec(l)?.[1]))
    expect(pids.has(String(corral.pid))).toBe(true)
    // Two workers' own lines ("Worker exiting") reached the file through the master.
    expect(errorLog.filter((l) => l.includes('[INFO] Worker exiting'))).toHaveLength(2)
    expect(errorLog.at(-1)).toMatch(/Shutting down: Master$/)
    // Nothing of it on stderr.
    expect(corral.log()).not.toMatch(/Starting corral/)
  })

  it('"-" writes the access log to stdout, as JSON lines with --access-log-json', async ({ signal }) => {
    const { corral, url } = await start(['-w', '1', '--access-logfile', '-', '--access-log-json'], signal)
    let stdout = ''
    corral.child.stdout!.on('data', (c: Buffer) => (stdout += c.toString()))
    await corral.untilReady()
    await get(`${url}/json?x=1`)
    await waitFor(() => stdout.includes('\n'), { what: 'an access line on stdout' })
    const entry = JSON.parse(stdout.split('\n')[0]!)
    expect(entry).toMatchObject({
      remote_addr: '127.0.0.1',
      request: 'GET /json?x=1 HTTP/1.1',
      status: 200,
      user_agent: null,
    })
    expect(entry.bytes).toBeGreaterThan(0)
  })
})

describe('bad log settings', () => {
  const corral = (args: string[]) => {
    const r = spawnSync(process.execPath, [BIN, '-b', '127.0.0.1:0', ...args, HELLO], {
      cwd: ROOT,
      encoding: 'utf8',
      timeout: 15_000,
    })
    return { code: r.status, stderr: r.stderr }
  }

  it('an unknown atom is one line naming --access-logformat, exit 2', () => {
    const r = corral(['--access-logfile', '-', '--access-logformat', '%(h)s %(nope)s'])
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/--access-logformat: unknown atom %\(nope\)s/)
    expect(r.stderr).not.toMatch(/^\s+at /m)
  })

  for (const flag of ['--access-logfile', '--error-logfile']) {
    it(`a ${flag} that cannot be opened is one line naming it, exit 1, nothing left running`, () => {
      const r = corral([flag, '/nonexistent-dir/x.log'])
      expect(r.code).toBe(1)
      expect(r.stderr).toMatch(new RegExp(`${flag}: can't open /nonexistent-dir/x\\.log \\(ENOENT`))
      expect(r.stderr).not.toMatch(/^\s+at /m)
      expect(r.stderr).not.toMatch(/Booting worker/)
    })
  }
})

describe('USR1 and logrotate', () => {
  it('mv the files, USR1, keep serving: every request is in the old or the new access log', async ({ signal }) => {
    const access = tmp('access.log')
    const error = tmp('error.log')
    const { corral, url } = await start(['-w', '2', '--access-logfile', access, '--error-logfile', error], signal)
    await waitFor(() => lines(error).some((l) => l.includes('Ready: 2 worker')), { what: 'ready in the error log' })
    const workers = corral.workers()
    expect(workers).toHaveLength(2)

    const load = startLoad(url, { connections: 4, maxRequests: 20_000 })
    await waitFor(() => lines(access).length >= 300, { what: 'some access lines', timeoutMs: 15_000 })
    // What logrotate does: rename, then tell the server.
    renameSync(access, `${access}.1`)
    renameSync(error, `${error}.1`)
    corral.signal('SIGUSR1')
    // Each worker says it reopened, in the new error log.
    await waitFor(
      () => workers.every((pid) => lines(error).some((l) => l.includes(`[${pid}] [INFO] Reopening log files`))),
      {
        what: 'both workers to reopen',
      },
    )
    await waitFor(() => lines(access).length >= 300, { what: 'lines in the new access log', timeoutMs: 15_000 })
    const result = await load.stop()
    corral.signal('SIGTERM')
    expect((await corral.exited).code).toBe(0)

    expect(result.failed).toBe(0)
    const before = lines(`${access}.1`)
    const after = lines(access)
    expect(before.length).toBeGreaterThan(0)
    expect(after.length).toBeGreaterThan(0)
    expect(before.length + after.length).toBe(result.ok)
    for (const line of [...before, ...after])
      expect(line).toMatch(/^127\.0\.0\.1 - - \[[^\]]+\] "GET \/ HTTP\/1\.1" 200 \d+ "-" "-"$/)
    // The master's own lines moved too: its reopening line is in one file, its shutdown in the new one.
    expect(lines(`${error}.1`).some((l) => l.includes('Handling signal: usr1') || l.includes('Ready: 2 worker'))).toBe(
      true,
    )
    expect(lines(error).at(-1)).toMatch(/Shutting down: Master$/)
  })
})
