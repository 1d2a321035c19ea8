// preRequest and postRequest on the request path (src/hooks/worker-hooks.ts): with
// neither set the app's handler is used as it is; a hook that returns no
// promise adds no await; one that returns a promise is waited for; a hook that
// throws or rejects is logged by name and the request is still served. Also:
// which config files a worker is told to import (src/master/server-hooks.ts).
import { EventEmitter } from 'node:events'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { createWorkerHooks } from '../src/hooks/worker-hooks.ts'
import { workerHookRef } from '../src/master/server-hooks.ts'
import type { WorkerHookName } from '../src/hooks/hooks.ts'
import type { Settings } from '../src/config/registry.ts'
import { defaults } from '../src/config/resolve.ts'
import type { Logger } from '../src/logging/log.ts'
import type { WorkerOptions } from '../src/protocol/master-worker.ts'

const tmp = mkdtempSync(join(tmpdir(), 'corral-hooks-request-'))
afterAll(() => rmSync(tmp, { recursive: true, force: true }))

let files = 0
/** A config file exporting these hooks (source text), and a worker runtime that has loaded it. */
async function workerWith(
  hooks: Record<string, string>,
): Promise<{ runtime: ReturnType<typeof createWorkerHooks>; logged: string[] }> {
  const file = join(tmp, `config-${++files}.mjs`)
  writeFileSync(
    file,
    `export default { ${Object.entries(hooks)
      .map(([k, v]) => `${k}: ${v}`)
      .join(', ')} }\n`,
  )
  const logged: string[] = []
  const push = (msg: string) => void logged.push(msg)
  const log: Logger = {
    debug: push,
    info: push,
    warning: push,
    error: push,
    critical: push,
    exception: (msg) => push(msg),
  }
  const options: WorkerOptions = {
    id: 7,
    app: 'app.ts',
    fds: [],
    name: 'test',
    settings: defaults(),
    hooks: Object.keys(hooks).length === 0 ? undefined : { file, names: Object.keys(hooks) as WorkerHookName[] },
  }
  const runtime = createWorkerHooks(options, log)
  await runtime.postFork()
  return { runtime, logged }
}

function fakeRequest(): { req: IncomingMessage; res: ServerResponse } {
  const req = Object.assign(new EventEmitter(), { url: '/x', headers: {} }) as unknown as IncomingMessage
  const res = Object.assign(new EventEmitter(), { req, statusCode: 200 }) as unknown as ServerResponse
  return { req, res }
}

describe('preRequest and postRequest', () => {
  it('with neither hook the handler is used as it is', async () => {
    const { runtime } = await workerWith({ postWorkerInit: '() => {}' })
    const handler = () => {}
    expect(runtime.wrapHandler(handler)).toBe(handler)
  })

  it('a preRequest that returns no promise adds no await: the app runs in the same tick', async () => {
    const { runtime } = await workerWith({ preRequest: '(worker, req) => { req.headers.seen = String(worker.id) }' })
    const { req, res } = fakeRequest()
    const seen: unknown[] = []
    runtime.wrapHandler((r) => void seen.push(r.headers['seen']))(req, res)
    expect(seen).toEqual(['7'])
  })

  it('a preRequest that returns a promise is waited for before the app runs', async () => {
    // The hook waits on a gate the test opens, so "not yet" is checked while it is provably still waiting.
    const gate = Promise.withResolvers<void>()
    const gates = globalThis as { corralTestGate?: Promise<void> }
    gates.corralTestGate = gate.promise
    const { runtime } = await workerWith({
      preRequest: 'async (worker, req) => { await globalThis.corralTestGate; req.headers.seen = "late" }',
    })
    const { req, res } = fakeRequest()
    const served = Promise.withResolvers<unknown>()
    runtime.wrapHandler((r) => served.resolve(r.headers['seen']))(req, res)
    const early = await Promise.race([served.promise, Promise.resolve('not yet')])
    expect(early).toBe('not yet')
    gate.resolve()
    expect(await served.promise).toBe('late')
    delete gates.corralTestGate
  })

  it('a preRequest that throws or rejects is logged by name and the request is still served', async () => {
    for (const body of ['() => { throw new Error("sync boom") }', 'async () => { throw new Error("async boom") }']) {
      const { runtime, logged } = await workerWith({ preRequest: body })
      const { req, res } = fakeRequest()
      const served = Promise.withResolvers<void>()
      runtime.wrapHandler(() => served.resolve())(req, res)
      await served.promise
      expect(logged.join('\n')).toMatch(/^Hook preRequest failed: (sync|async) boom$/m)
    }
  })

  it('postRequest runs once the response closes, with the request and the response', async () => {
    const { runtime, logged } = await workerWith({
      postRequest: '(worker, req, res) => worker.log.info(`post ${worker.id} ${req.url} ${res.statusCode}`)',
    })
    const { req, res } = fakeRequest()
    runtime.wrapHandler(() => {})(req, res)
    expect(logged).toEqual([])
    res.emit('close')
    expect(logged).toEqual(['post 7 /x 200'])
  })

  it('a postRequest that throws is logged by name', async () => {
    const { runtime, logged } = await workerWith({ postRequest: '() => { throw new Error("after") }' })
    const { req, res } = fakeRequest()
    runtime.wrapHandler(() => {})(req, res)
    res.emit('close')
    expect(logged).toEqual(['Hook postRequest failed: after'])
  })
})

describe('which config file a worker imports', () => {
  const settings = (values: Partial<Record<string, unknown>>) => ({ ...defaults(), ...values }) as Settings

  it('none when the config file sets only master-side hooks', () => {
    expect(
      workerHookRef(settings({ config: 'corral.config.ts', whenReady: () => {}, preFork: () => {} })),
    ).toBeUndefined()
  })

  it('the config file, as an absolute path, and the worker-side hooks it sets', () => {
    const ref = workerHookRef(
      settings({ config: 'corral.config.ts', whenReady: () => {}, postFork: () => {}, preRequest: () => {} }),
    )
    expect(ref).toEqual({ file: join(process.cwd(), 'corral.config.ts'), names: ['postFork', 'preRequest'] })
  })
})
