// The stash end to end (spec/stash.md): real masters and workers, the app
// calling `import { stash } from 'corral'`, real signals.
import { spawnSync } from 'node:child_process'
import { chmodSync, copyFileSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it, onTestFinished } from 'vitest'
import { createLogger } from '../src/logging/log.ts'
import { stashClient } from '../src/stash/client.ts'
import { removeStaleSockets, startStash } from '../src/stash/server.ts'
import { untilReady } from './helpers/control.ts'
import { fixture, freePort, killAll, pidIn, ROOT, startCorral, track, waitFor, type Corral } from './helpers/corral.ts'
import { getJson } from './helpers/load.ts'

afterEach(killAll)

type Answer<T = unknown> = { value: T } | { error: string; message: string }

async function serve(
  workers: number,
  signal: AbortSignal,
  { extra = [] as string[], env = {} as NodeJS.ProcessEnv, app = fixture('app-stash.ts') } = {},
): Promise<{ corral: Corral; url: string }> {
  const port = await freePort()
  const corral = startCorral(['-w', String(workers), '-b', `127.0.0.1:${port}`, ...extra, app], { signal, env })
  await untilReady(corral.controlSocket as string, signal)
  return { corral, url: `http://127.0.0.1:${port}` }
}

const call = <T>(url: string, path: string) => getJson<Answer<T>>(`${url}${path}`)
async function value<T>(url: string, path: string): Promise<T> {
  const a = await call<T>(url, path)
  if ('error' in a) throw new Error(`${path}: ${a.error}: ${a.message}`)
  return a.value
}
const set = async (url: string, key: string, v: unknown, ttl?: number) => {
  const res = await fetch(`${url}/set?k=${key}${ttl === undefined ? '' : `&ttl=${ttl}`}`, {
    method: 'POST',
    body: JSON.stringify(v),
  })
  const a = (await res.json()) as Answer
  if ('error' in a) throw new Error(`set ${key}: ${a.message}`)
}
describe('the stash, end to end', () => {
  it('4 workers adding to one counter at once reach the exact total', async ({ signal }) => {
    const { corral, url } = await serve(4, signal, { env: { STASH_RACE: '500', STASH_RACE_WORKERS: '4' } })
    const done = await waitFor(
      async () => {
        const keys = await value<string[]>(url, '/keys?g=done:*')
        return keys.length === 4 && keys
      },
      { what: '4 workers to finish their increments', timeoutMs: 60_000 },
    )
    expect(await value(url, '/get?k=hits')).toBe(2000)
    // The 4 racers were the 4 workers.
    expect(done.map((k) => Number(k.slice('done:'.length))).sort()).toEqual(corral.workers().sort())
  })

  it('survives a HUP: new workers read what the old ones wrote', async ({ signal }) => {
    const { corral, url } = await serve(2, signal)
    await set(url, 'flag', { beta: true })
    expect(await value(url, '/incr?k=n&by=5')).toBe(5)
    const before = corral.workers()
    corral.signal('SIGHUP')
    await waitFor(() => corral.workers().length === 2 && corral.workers().every((p) => !before.includes(p)), {
      what: 'a new generation of workers',
      timeoutMs: 30_000,
    })
    await untilReady(corral.controlSocket as string, signal)
    const pid = await value<number>(url, '/pid')
    expect(before).not.toContain(pid)
    expect(await value(url, '/get?k=flag')).toEqual({ beta: true })
    expect(await value(url, '/incr?k=n')).toBe(6)
  })

  it('moves to the new master on USR2; writes while both serve land in the new one', async ({ signal }) => {
    const dir = mkdtempSync(join(tmpdir(), 'corral-stash-upgrade-'))
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }))
    const pidfile = join(dir, 'corral.pid')
    const { corral: old, url } = await serve(2, signal, { extra: ['-p', pidfile] })
    await set(url, 'flag', 'from the old master')
    await set(url, 'short', 'lives 60 s', 60)
    expect(await value(url, '/incr?k=n&by=10')).toBe(10)
    old.signal('SIGUSR2')
    const fresh = await waitFor(
      () => {
        const pid = pidIn(pidfile)
        return pid !== undefined && pid !== old.pid && pid
      },
      { what: 'the new master to be ready', timeoutMs: 60_000 },
    )
    track(fresh)
    // Both generations serve now: every one of these lands in one counter.
    const served = await Promise.all(Array.from({ length: 20 }, () => value<number>(url, '/incr?k=n')))
    expect(new Set(served).size).toBe(20)
    // The old master hands over and exits; only the new master's workers are left.
    old.signal('SIGQUIT')
    await old.exited
    expect(old.log()).toMatch(/stash: handed 3 entries over to the new master/)
    const pid = await value<number>(url, '/pid')
    expect(old.workers()).not.toContain(pid)
    expect(await value(url, '/get?k=flag')).toBe('from the old master')
    expect(await value(url, '/get?k=short')).toBe('lives 60 s')
    expect(await value(url, '/incr?k=n')).toBe(31)
    process.kill(fresh, 'SIGTERM')
  })

  it('a USR2 that rolls back (the new code throws at import) leaves the old master serving its stash', async ({
    signal,
  }) => {
    const dir = mkdtempSync(join(tmpdir(), 'corral-stash-deploy-'))
    try {
      const app = join(dir, 'app.ts')
      copyFileSync(fixture('app-stash.ts'), app)
      const { corral: old, url } = await serve(2, signal, { app })
      expect(await value(url, '/incr?k=n&by=10')).toBe(10)
      writeFileSync(app, "throw new Error('broken deploy: thrown at import')\n")
      old.signal('SIGUSR2')
      await old.waitForLog(/Re-exec failed: the new master exited with code 4 before it was ready/, {
        timeoutMs: 60_000,
      })
      expect(old.log()).toMatch(/stash: handed 1 entries over to the new master/)
      // The old workers' next calls are answered from the old master's copy; none fails.
      expect(await value(url, '/incr?k=n')).toBe(11)
      expect(await value(url, '/incr?k=n')).toBe(12)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it('a value past --stash-max-bytes gets STASH_FULL and nothing is lost', async ({ signal }) => {
    const { url } = await serve(1, signal, { extra: ['--stash-max-bytes', '10000'] })
    await set(url, 'kept', 'still here')
    const full = await call(url, '/big?bytes=20000')
    expect(full).toMatchObject({ error: 'STASH_FULL' })
    expect((full as { message: string }).message).toMatch(
      /^corral stash: the stash is full: e2e\/big needs \d+ more bytes and \d+ of --stash-max-bytes 10000 are in use/,
    )
    expect(await value(url, '/get?k=kept')).toBe('still here')
    expect(await value(url, '/big?bytes=100')).toBeNull()
    type Stats = { bytes: number; maxBytes: number; lagP99Ms: number }
    const stats = await value<Stats>(url, '/stats')
    expect(stats.maxBytes).toBe(10000)
    expect(stats.bytes).toBeGreaterThan(100)
    // The master's lag is sampled from the first stats call on: later ones see it.
    await waitFor(async () => (await value<Stats>(url, '/stats')).lagP99Ms > 0, { what: 'a lag sample' })
  })

  it('bad calls get one clear line each, and the worker keeps serving', async ({ signal }) => {
    const { url } = await serve(1, signal)
    expect(await call(url, '/bad?case=name')).toEqual({
      error: 'STASH_BAD_CALL',
      message: 'corral stash: stash.table(name): the name must be a non-empty string, not number 42',
    })
    expect(await call(url, '/bad?case=key')).toEqual({
      error: 'STASH_BAD_CALL',
      message: 'corral stash: e2e.get(key): the key must be a string, not a object',
    })
    expect(await call(url, '/bad?case=value')).toMatchObject({
      error: 'STASH_BAD_CALL',
      message: expect.stringMatching(
        /^corral stash: e2e.set\(fn\): the value cannot be stored \(.*could not be cloned/,
      ),
    })
    expect(await value(url, '/incr?k=after')).toBe(1)
  })

  it('a call while the master is stopping is answered until the stash closes, then fails clearly', async ({
    signal,
  }) => {
    const { corral, url } = await serve(1, signal)
    const client = stashClient(await value<string>(url, '/socket'))
    const t = client.table('e2e')
    await t.set('k', 1)
    corral.signal('SIGTERM')
    let answered = 0
    let failure: unknown
    for (;;) {
      try {
        await t.incr('k')
        answered++
      } catch (err) {
        failure = err
        break
      }
    }
    expect(failure).toMatchObject({ code: 'STASH_UNREACHABLE' })
    expect(String(failure)).toMatch(/^StashError: corral stash: the master/)
    await corral.exited
    await expect(t.get('k')).rejects.toThrow(/corral stash: the master's stash is not there/)
    expect(answered).toBeGreaterThan(0)
  })
})

// -u: workers that are another user still reach the master's stash (its socket is given to them).
const NOBODY = 65534
const asNobody =
  process.getuid?.() === 0 &&
  spawnSync(process.execPath, ['-e', 'require("node:fs").accessSync(process.argv[1])', `${ROOT}src/worker/main.ts`], {
    uid: NOBODY,
    gid: NOBODY,
    timeout: 15_000,
  }).status === 0

describe.skipIf(!asNobody)('the stash with workers run as another user', () => {
  it('-u nobody: workers reach the stash', async ({ signal }) => {
    const dir = mkdtempSync(join(tmpdir(), 'corral-stash-app-'))
    try {
      chmodSync(dir, 0o755)
      const app = join(dir, 'app.ts')
      copyFileSync(fixture('app-stash.ts'), app)
      chmodSync(app, 0o644)
      const { url } = await serve(1, signal, { extra: ['-u', 'nobody'], app })
      expect(await value(url, '/incr?k=n')).toBe(1)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})

describe('socket directories left by killed masters', () => {
  it("are removed by the next stash to start; a live one's is not", async () => {
    const log = createLogger({ level: 'critical' })
    const live = await startStash({ maxBytes: 1000, log })
    try {
      const dead = mkdtempSync(join(tmpdir(), 'corral-stash-'))
      const sock = join(dead, 'stash.sock')
      // A process that listens there and is SIGKILLed leaves the socket file, as a killed master does.
      spawnSync(process.execPath, [
        '-e',
        `require('node:net').createServer().listen(${JSON.stringify(sock)}, () => process.kill(process.pid, 'SIGKILL'))`,
      ])
      expect(existsSync(sock)).toBe(true)
      removeStaleSockets()
      await waitFor(() => !existsSync(dead), { what: 'the stale directory to go' })
      expect(existsSync(live.path)).toBe(true)
      const client = stashClient(live.path)
      await client.table('t').set('a', 1)
      client.close()
    } finally {
      await live.stop()
      delete process.env.CORRAL_STASH_SOCKET
    }
  })
})
