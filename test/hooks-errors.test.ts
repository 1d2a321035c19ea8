// Server hooks that throw (spec/hooks.md): every hook but onStarting throws
// (preRequest and postRequest reject), through start, TTIN, HUP, a worker's
// SIGINT, a stuck worker, USR2 and a stop. Each failure is logged with the
// hook's name and reason, and the server keeps serving throughout; a failed
// preExec stops the USR2 it was for.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, afterEach, expect, it } from 'vitest'
import { fixture, freePort, killAll, startCorral, waitFor } from './helpers/corral.ts'
import { get } from './helpers/load.ts'
import { HOOK_NAMES } from '../src/hooks/hooks.ts'

afterEach(killAll)

const tmp = mkdtempSync(join(tmpdir(), 'corral-hooks-errors-'))
afterAll(() => rmSync(tmp, { recursive: true, force: true }))

// sslContext runs only with --certfile: test/hooks-ssl-context.test.ts; the
// dirty pool's only with --dirty-app: test/e2e-dirty.test.ts.
const THROWING = HOOK_NAMES.filter((h) => h !== 'onStarting' && h !== 'sslContext' && !/^(onD|d)irty/.test(h))

const hooksRun = (file: string): { hook: string; pid: number; [k: string]: unknown }[] => {
  try {
    return readFileSync(file, 'utf8')
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => JSON.parse(l) as { hook: string; pid: number })
  } catch {
    return []
  }
}

it('a hook that throws is logged with its name and the reason, and the server keeps serving', {
  timeout: 60_000,
}, async ({ signal }) => {
  const log = join(tmp, 'hooks.jsonl')
  const pidfile = join(tmp, 'corral.pid')
  const port = await freePort()
  const url = `http://127.0.0.1:${port}`
  const corral = startCorral(
    [
      '-c',
      fixture('hooks-config.ts'),
      '-w',
      '1',
      '-t',
      '3',
      '-b',
      `127.0.0.1:${port}`,
      '-p',
      pidfile,
      fixture('hooks-app.ts'),
    ],
    {
      env: { HOOKS_LOG: log, HOOKS_THROW: THROWING.join(',') },
      signal,
    },
  )
  const ran = (hook: string, where: Record<string, unknown> = {}) =>
    waitFor(() => hooksRun(log).find((l) => l.hook === hook && Object.entries(where).every(([k, v]) => l[k] === v)), {
      timeoutMs: 15_000,
      what: hook,
    })
  const serves = async () => expect((await get(`${url}/`)).status).toBe(200)

  await corral.untilReady()
  await serves()
  await ran('postRequest')

  corral.signal('SIGTTIN')
  await ran('postWorkerInit', { id: 2 })
  await serves()

  const generation0 = hooksRun(log)
    .filter((l) => l.hook === 'postFork')
    .map((l) => l.pid)
  corral.signal('SIGHUP')
  await corral.untilReloaded(1)
  for (const pid of generation0) await ran('childExit', { workerPid: pid })
  await serves()

  const [interrupted] = corral.workers()
  process.kill(interrupted!, 'SIGINT')
  await ran('childExit', { workerPid: interrupted })
  await serves()

  void get(`${url}/spin`, { timeoutMs: 20_000 }).catch(() => {})
  const spun = await ran('preRequest', { url: '/spin' })
  await ran('childExit', { workerPid: spun.pid, signal: 'SIGKILL' })
  await serves()

  // A preExec that fails abandons the re-exec before anything changed (the
  // chart's reexecing.preExec): no new master, the pidfile still names this one.
  corral.signal('SIGUSR2')
  await corral.waitForLog(/Re-exec abandoned: the preExec hook failed \(preExec exploded\); this master keeps serving/)
  expect(Number(readFileSync(pidfile, 'utf8').trim())).toBe(corral.pid)
  expect(corral.log()).not.toMatch(/Re-exec: started a new master/)
  await serves()

  corral.signal('SIGTERM')
  expect((await corral.exited).code).toBe(0)
  const text = corral.log()
  for (const hook of THROWING) {
    // The name and the reason on the line that says it failed; the stack, if any, after it.
    expect(text, hook).toMatch(new RegExp(`\\[ERROR\\] Hook ${hook} failed: ${hook} exploded\\n`))
  }
  expect(text).toContain('Shutting down: Master')
})
