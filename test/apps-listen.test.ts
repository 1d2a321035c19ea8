// Apps that start their own server, run unchanged (spec/apps.md, "Apps that
// call listen()"): a real Express 5 app calling app.listen(), plain node:http
// on $PORT and on a unix path, Fastify's await app.listen(), an app with a
// second (metrics) server, an app that closes its own server. Each is served
// from corral's bind only: the kernel's table of listening sockets shows
// nothing on the port the app asked for.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { connect } from 'node:http2'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { fixture, freePort, isAlive, killAll, startCorral, waitFor, type Corral } from './helpers/corral.ts'
import { untilMaster } from './helpers/control.ts'
import { get, getJson, startLoad } from './helpers/load.ts'
import { certsForTests } from './helpers/tls-certs.ts'

afterEach(killAll)
const tmp = mkdtempSync(join(tmpdir(), 'corral-listen-'))
afterAll(() => rmSync(tmp, { recursive: true, force: true }))

/** Every TCP port in LISTEN on this machine (IPv4 and IPv6), from /proc/net/tcp{,6}. */
function listeningPorts(): Set<number> {
  const ports = new Set<number>()
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    for (const line of readFileSync(table, 'utf8').split('\n').slice(1)) {
      const [, local, , state] = line.trim().split(/\s+/)
      if (state === '0A' && local) ports.add(Number.parseInt(local.split(':').at(-1)!, 16))
    }
  }
  return ports
}

async function serve(
  app: string,
  signal: AbortSignal,
  { workers = 2, extra = [] as string[], env = {} as NodeJS.ProcessEnv } = {},
): Promise<{ corral: Corral; url: string; port: number }> {
  const port = await freePort()
  const corral = startCorral(['-w', String(workers), '-b', `127.0.0.1:${port}`, ...extra, app], { signal, env })
  await corral.untilReady()
  return { corral, url: `http://127.0.0.1:${port}`, port }
}

const count = (text: string, pattern: RegExp) => text.match(new RegExp(pattern, 'g'))?.length ?? 0

describe('an app that calls listen() itself', () => {
  it('Express 5 app.listen(PORT): served on corral bind only, in every worker; listening and address() as on its own server; the master says so once', async ({
    signal,
  }) => {
    const appPort = await freePort()
    const { corral, url, port } = await serve(fixture('listen-express.ts'), signal, {
      env: { APP_PORT: String(appPort) },
    })
    // Both workers answer, each from corral's one bind.
    const pids = new Set<string>()
    await waitFor(async () => {
      pids.add((await get(url)).body)
      return pids.size === 2
    })
    expect([...pids].sort()).toEqual(corral.workers().map(String).sort())
    // The app's listen() callback ran in each worker, seeing corral's address.
    const address = JSON.stringify({ address: '127.0.0.1', family: 'IPv4', port })
    for (const pid of corral.workers()) expect(corral.log()).toContain(`app: listening in ${pid} at ${address}`)
    expect(await getJson(`${url}/address`)).toEqual({ address: JSON.parse(address), listening: true })
    // Nothing else is bound: not the app's port, on any interface.
    const ports = listeningPorts()
    expect(ports.has(port)).toBe(true)
    expect(ports.has(appPort)).toBe(false)
    // Said once by the master, not once per worker, with the -b that keeps the app's port.
    const notice = `The app's own listen() (port ${appPort}) binds nothing: corral serves the app at http://127.0.0.1:${port}, its bind; -b 0.0.0.0:${appPort} keeps the app's address`
    expect(count(corral.log(), new RegExp(notice.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')))).toBe(1)
    expect(corral.log()).not.toMatch(/EADDRINUSE|respawning/)
  })

  it('0 failed requests under load across a HUP and --max-requests recycling; the access log has every request', {
    timeout: 60_000,
  }, async ({ signal }) => {
    const { corral, url } = await serve(fixture('listen-express.ts'), signal, {
      extra: ['--max-requests', '100', '--access-logfile', '-', '--worker-connections', '50'],
      env: { APP_PORT: String(await freePort()) },
    })
    const before = corral.workers()
    const load = startLoad(url, { connections: 4, keepAlive: true })
    // --max-requests retires workers while the load runs.
    await untilMaster(
      corral.controlSocket!,
      ['show', 'stats'],
      'stats',
      ({ stats }) => stats.restarts['max-requests'] > 0,
      signal,
    )
    corral.signal('SIGHUP')
    await corral.untilReloaded(1)
    await waitFor(() => before.every((pid) => !isAlive(pid)), { what: 'the first workers to exit' })
    const after = corral.workers()
    await waitFor(() => after.some((pid) => load.seen().bodies.has(String(pid))), { what: 'the new workers to answer' })
    const result = await load.stop()
    expect(result.errors.slice(0, 5)).toEqual([])
    expect(result.failed).toBe(0)
    // Both the first workers and the last answered the load.
    const answered = new Set(result.bodies.keys())
    expect(before.some((pid) => answered.has(String(pid)))).toBe(true)
    expect(after.some((pid) => answered.has(String(pid)))).toBe(true)
    // Every answered request has its access log line (gunicorn's format: "GET / HTTP/1.1" 200).
    await waitFor(() => count(corral.log(), /"GET \/ HTTP\/1\.1" 200/) >= result.ok, {
      what: 'an access log line for every answered request',
    })
  })

  it('plain node:http listening on $PORT: served on corral bind; with TERM it stops cleanly', async ({ signal }) => {
    const appPort = await freePort()
    const { corral, url, port } = await serve(fixture('listen-plain.cjs'), signal, {
      env: { PORT: String(appPort) },
      workers: 1,
    })
    expect((await get(url)).body).toBe(String(corral.workers()[0]))
    expect(listeningPorts().has(appPort)).toBe(false)
    expect(corral.log()).toContain(`corral serves the app at http://127.0.0.1:${port}, its bind`)
    expect(corral.log()).toContain(
      `app: right after listen() ${JSON.stringify({ address: '127.0.0.1', family: 'IPv4', port })} true`,
    )
    corral.signal('SIGTERM')
    expect((await corral.exited).code).toBe(0)
  })

  it('a listen() on a unix path binds no socket file; the app is served on corral bind', async ({ signal }) => {
    const socket = join(tmp, 'app.sock')
    const { corral, url } = await serve(fixture('listen-plain.cjs'), signal, {
      env: { APP_SOCKET: socket },
      workers: 1,
    })
    expect((await get(url)).body).toBe(String(corral.workers()[0]))
    expect(existsSync(socket)).toBe(false)
    expect(corral.log()).toContain(`The app's own listen() (unix:${socket}) binds nothing`)
    expect(corral.log()).toContain(`-b unix:${socket} keeps the app's address`)
  })

  it("Fastify's await app.listen() at the top level: served, plugins and all; Fastify reports corral's address", async ({
    signal,
  }) => {
    const appPort = await freePort()
    const { corral, url, port } = await serve(fixture('listen-fastify.ts'), signal, {
      env: { APP_PORT: String(appPort) },
      workers: 1,
    })
    expect(await getJson(url)).toEqual({ hello: 'fastify', pid: corral.workers()[0] })
    expect((await get(`${url}/plugin/hello/corral`)).body).toBe('Hello, corral\n')
    expect(corral.log()).toContain(`app: fastify says it listens at http://127.0.0.1:${port}`)
    expect(listeningPorts().has(appPort)).toBe(false)
  })

  it('a second server (metrics on another port) is not served and binds nothing; its listen() succeeds; the master warns once', async ({
    signal,
  }) => {
    const [appPort, metricsPort] = [await freePort(), await freePort()]
    const { corral, url } = await serve(fixture('listen-twice.mjs'), signal, {
      env: { APP_PORT: String(appPort), METRICS_PORT: String(metricsPort) },
    })
    expect((await get(url)).body).toMatch(/^main \d+$/)
    for (const pid of corral.workers()) expect(corral.log()).toContain(`app: metrics listening in ${pid}`)
    const ports = listeningPorts()
    expect(ports.has(metricsPort)).toBe(false)
    expect(ports.has(appPort)).toBe(false)
    expect(
      count(
        corral.log(),
        new RegExp(`\\[WARNING\\] The app's listen\\(\\) of a second server \\(port ${metricsPort}\\) binds nothing`),
      ),
    ).toBe(1)
  })

  it('the app closing its own server retires its worker: the close() callback runs, a new worker takes over', async ({
    signal,
  }) => {
    const { corral, url } = await serve(fixture('listen-express.ts'), signal, {
      env: { APP_PORT: String(await freePort()) },
      workers: 1,
    })
    const [first] = corral.workers()
    expect((await get(`${url}/close`)).body).toBe('closing')
    await corral.waitForLog(new RegExp(`app: closed in ${first}`))
    await waitFor(() => !isAlive(first!) && corral.workers().length === 1, { what: 'a replacement worker' })
    expect((await get(url)).body).toBe(String(corral.workers()[0]))
    expect(corral.log()).not.toMatch(/\[ERROR\]/)
  })

  it('--preload and --check-config load such an app in the master or the CLI without binding what it asks for', async ({
    signal,
  }) => {
    const appPort = await freePort()
    const env = { APP_PORT: String(appPort) }
    const { corral, url } = await serve(fixture('listen-express.ts'), signal, { env, extra: ['--preload'], workers: 1 })
    expect(corral.log()).toContain(`app: listening in ${corral.pid}`)
    expect((await get(url)).body).toBe(String(corral.workers()[0]))
    expect(listeningPorts().has(appPort)).toBe(false)
    const check = startCorral(['--check-config', fixture('listen-express.ts')], { signal, env })
    expect((await check.exited).code).toBe(0)
    expect(check.log()).toMatch(/configuration OK/)
  })

  it("a WebSocketServer attached to the app's own server ({ server }) takes its upgrades through corral's bind", async ({
    signal,
  }) => {
    const { corral, port } = await serve(fixture('listen-websocket.mjs'), signal, {
      env: { APP_PORT: String(await freePort()) },
      workers: 1,
    })
    const ws = new WebSocket(`ws://127.0.0.1:${port}/`)
    await new Promise((opened, failed) => {
      ws.onopen = opened
      ws.onerror = failed
    })
    const answer = new Promise<string>((got) => {
      ws.onmessage = (e) => got(String(e.data))
    })
    ws.send('hi')
    expect(await answer).toBe(`echo hi from ${corral.workers()[0]}`)
    ws.close()
  })

  it('on TERM, such a WebSocket is sent 1001 (going away): the worker drains long before --graceful-timeout', async ({
    signal,
  }) => {
    const { corral, port } = await serve(fixture('listen-websocket.mjs'), signal, {
      env: { APP_PORT: String(await freePort()) },
      workers: 1,
      extra: ['--graceful-timeout', '120'],
    })
    const ws = new WebSocket(`ws://127.0.0.1:${port}/`)
    await new Promise((opened, failed) => {
      ws.onopen = opened
      ws.onerror = failed
    })
    const closed = new Promise<number>((done) => {
      ws.onclose = (e) => done(e.code)
    })
    corral.signal('SIGTERM')
    expect(await closed).toBe(1001)
    // Within the test's own timeout: far less than the 120 s the open socket could otherwise hold the worker.
    expect((await corral.exited).code).toBe(0)
  })

  describe('an http2 secure server (compatibility API)', () => {
    const tls = certsForTests()
    const env = () => ({ APP_CERT: tls.certs.serverCert, APP_KEY: tls.certs.serverKey })

    it('is served as plain HTTP/1.1 on a plain bind, and the notice says its certificates are not used', async ({
      signal,
    }) => {
      const appPort = await freePort()
      const { corral, url } = await serve(fixture('listen-http2.mjs'), signal, {
        env: { ...env(), APP_PORT: String(appPort) },
        workers: 1,
      })
      expect((await get(url)).body).toBe(`http 1.1 from ${corral.workers()[0]}`)
      expect(corral.log()).toContain(
        `-b 0.0.0.0:${appPort} keeps the app's address; its TLS certificates are not used (plain HTTP): give corral --certfile and --keyfile`,
      )
    })

    it("is served over HTTP/2 with corral's --certfile and --http-protocols h2,h1", async ({ signal }) => {
      const { corral, port } = await serve(fixture('listen-http2.mjs'), signal, {
        env: env(),
        workers: 1,
        extra: ['--certfile', tls.certs.serverCert, '--keyfile', tls.certs.serverKey, '--http-protocols', 'h2,h1'],
      })
      const session = connect(`https://localhost:${port}`, { ca: tls.caPem })
      try {
        const body = await new Promise<string>((done, failed) => {
          const req = session.request({ ':path': '/' })
          let text = ''
          req.setEncoding('utf8')
          req.on('data', (c: string) => (text += c))
          req.on('end', () => done(text))
          req.on('error', failed)
          req.end()
        })
        expect(body).toBe(`http 2.0 from ${corral.workers()[0]}`)
        expect(corral.log()).not.toContain('its TLS certificates are not used')
      } finally {
        session.close()
      }
    })
  })
})
