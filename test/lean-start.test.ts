// A lean start (spec/architecture.md, "A lean start"): what a worker and the
// master load on their way to the first response. Every process of a real
// master is preloaded with test/fixtures/module-report.cjs, which writes at
// exit the built-ins Node loaded (process.moduleLoadList) and every module
// resolved; the test then fails on anything from a deny list: undici (what an
// ESM import of node:http drags in through its lazy WebSocket getters),
// node:http2 and node:tls when neither HTTP/2 nor TLS is configured,
// node:crypto and node:perf_hooks when no setting needs them, and effect in a
// worker.
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { untilReady } from './helpers/control.ts'
import { fixture, freePort, killAll, startCorral } from './helpers/corral.ts'

interface Report {
  role: 'master' | 'worker'
  builtins: string[]
  resolved: string[]
}

const dirs: string[] = []
afterEach(async () => {
  await killAll()
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
})

/** Runs a master with `args` through one response and a clean stop; what each of its processes loaded. */
async function loadedBy(args: string[], env: NodeJS.ProcessEnv, signal: AbortSignal): Promise<Report[]> {
  const dir = mkdtempSync(join(tmpdir(), 'corral-modules-'))
  dirs.push(dir)
  const port = await freePort()
  const corral = startCorral(['-w', '1', '-b', `127.0.0.1:${port}`, ...args, fixture('app-pid.ts')], {
    env: { ...env, NODE_OPTIONS: `--require=${fixture('module-report.cjs')}`, CORRAL_MODULE_REPORT: dir },
    signal,
  })
  await untilReady(corral.controlSocket!, signal)
  const [worker] = corral.workers()
  expect(await (await fetch(`http://127.0.0.1:${port}/`)).text()).toBe(String(worker))
  corral.signal('SIGTERM')
  expect(await corral.exited).toEqual({ code: 0, signal: null })
  const reports = readdirSync(dir).map((f) => JSON.parse(readFileSync(join(dir, f), 'utf8')) as Report)
  // Both reported: a preload that never ran would pass any deny list.
  expect(reports.map((r) => r.role).sort()).toEqual(['master', 'worker'])
  return reports
}

/** The deny list's entries a process loaded: built-ins by Node's name for them, packages by their path. */
function denied(report: Report, deny: { builtins: RegExp; packages?: RegExp }): string[] {
  return [
    ...report.builtins.filter((name) => deny.builtins.test(name)),
    ...(deny.packages ? report.resolved.filter((url) => deny.packages!.test(url)) : []),
  ]
}

const UNDICI = /^NativeModule internal\/deps\/undici\//
const HTTP2 = /^NativeModule (http2|internal\/http2\/)/
const TLS = /^NativeModule (tls|_tls_\w+|https)$/
// What the first response does not need: loaded when a setting asks for it
// (--max-requests' jitter, --access-logfile's and --statsd-host's timing).
// Not node:dgram: the IPC channel to the master loads it anyway.
const ON_DEMAND = /^NativeModule (crypto|perf_hooks)$/
const EFFECT = /\/node_modules\/effect\//
const any = (...res: RegExp[]) => new RegExp(res.map((r) => r.source).join('|'))

// As bin/corral.js runs it (the bundle when it is fresh, as CI and installs
// run it; else the sources), and from the TypeScript sources run natively.
describe.each([
  { how: 'as bin/corral.js runs it', env: {} },
  { how: 'from the sources', env: { CORRAL_FROM_SOURCE: '1' } },
])('a lean start, $how', ({ env }) => {
  it('a worker serving plain HTTP/1.1 loads neither undici, HTTP/2, TLS, what it needs later, nor effect; the master neither undici, HTTP/2, TLS nor crypto', async ({
    signal,
  }) => {
    const reports = await loadedBy([], env, signal)
    const worker = reports.find((r) => r.role === 'worker')!
    const master = reports.find((r) => r.role === 'master')!
    // The report itself works: node:http was loaded, and the app was resolved.
    expect(worker.builtins).toContain('NativeModule http')
    expect(worker.resolved.some((url) => url.endsWith('/app-pid.ts'))).toBe(true)
    expect(denied(worker, { builtins: any(UNDICI, HTTP2, TLS, ON_DEMAND), packages: EFFECT })).toEqual([])
    // node:crypto: only for the --inspector page's token.
    expect(denied(master, { builtins: any(UNDICI, HTTP2, TLS, /^NativeModule crypto$/) })).toEqual([])
  })
})
