// HTTP/2 over TLS beside HTTP/1.1 on the same port (--http-protocols h2,h1),
// end to end with Node's http2 and https clients and curl: ALPN picks the
// protocol, the same app answers both, a graceful stop sends GOAWAY and lets
// streams in flight finish, and a reload under load over both protocols
// fails no request.
import { execFile } from 'node:child_process'
import { connect, constants, type ClientHttp2Session } from 'node:http2'
import { Agent, request, type RequestOptions } from 'node:https'
import type { TLSSocket } from 'node:tls'
import { afterEach, describe, expect, it } from 'vitest'
import { ROOT, fixture, freePort, isAlive, killAll, startCorral, waitFor, type Corral } from './helpers/corral.ts'
import { certsForTests } from './helpers/tls-certs.ts'

const APP = fixture('app-listener-info.ts')
const EXPRESS = `${ROOT}examples/express.ts`
const env = { ...process.env }
delete env['WEB_CONCURRENCY']
delete env['CORRAL_CMD_ARGS']

const pki = certsForTests()
afterEach(killAll)

interface Info {
  pid: number
  version: string
  host: string | null
  encrypted: boolean
}

function start(port: number, extra: string[], signal: AbortSignal, app = APP): Corral {
  return startCorral(
    [
      '-b',
      `127.0.0.1:${port}`,
      '--certfile',
      pki.certs.serverCert,
      '--keyfile',
      pki.certs.serverKey,
      '--http-protocols',
      'h2,h1',
      ...extra,
      app,
    ],
    {
      env,
      signal,
    },
  )
}

function session(port: number): Promise<ClientHttp2Session> {
  return new Promise((resolve, reject) => {
    const s = connect(`https://127.0.0.1:${port}`, { ca: pki.caPem })
    s.once('connect', () => resolve(s))
    s.once('error', reject)
  })
}

/** One request on an HTTP/2 session. */
function h2Get(s: ClientHttp2Session, path = '/'): Promise<{ status: number; info: Info }> {
  return new Promise((resolve, reject) => {
    const req = s.request({ ':path': path })
    let status = 0
    let body = ''
    req.on('response', (headers) => (status = Number(headers[':status'])))
    req.setEncoding('utf8')
    req.on('data', (c: string) => (body += c))
    req.on('end', () => {
      try {
        resolve({ status, info: JSON.parse(body) as Info })
      } catch (err) {
        reject(err)
      }
    })
    req.on('error', reject)
    req.end()
  })
}

/** A stream whose response headers have arrived (it is in flight in a worker); `done` is its whole answer. */
async function h2InFlight(
  s: ClientHttp2Session,
  path: string,
): Promise<{ done: Promise<{ status: number; info: Info } | Error> }> {
  const req = s.request({ ':path': path })
  const status = await new Promise<number>((resolve, reject) => {
    req.once('response', (headers) => resolve(Number(headers[':status'])))
    req.once('error', reject)
  })
  let body = ''
  req.setEncoding('utf8')
  req.on('data', (c: string) => (body += c))
  const done = new Promise<{ status: number; info: Info } | Error>((settle) => {
    req.on('end', () => {
      try {
        settle({ status, info: JSON.parse(body) as Info })
      } catch {
        settle(new Error(`stream ended after ${body.length} bytes of its body`))
      }
    })
    req.on('error', settle)
    req.on('close', () => settle(new Error(`stream closed (code ${req.rstCode})`)))
  })
  return { done }
}

/** One HTTPS request from a client that speaks only HTTP/1.1, and says so in ALPN. */
function h1Get(port: number, agent?: Agent): Promise<{ status: number; info: Info; alpn: string | false | null }> {
  return new Promise((resolve, reject) => {
    // ALPNProtocols reaches tls.connect; @types/node leaves it out of https's options.
    const options: RequestOptions & { ALPNProtocols: string[] } = {
      host: '127.0.0.1',
      port,
      path: '/',
      ca: pki.caPem,
      agent: agent ?? false,
      ALPNProtocols: ['http/1.1'],
      timeout: 5000,
    }
    const req = request(options, (res) => {
      const alpn = (res.socket as TLSSocket).alpnProtocol
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (c: string) => (body += c))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, info: JSON.parse(body) as Info, alpn }))
      res.on('error', reject)
    })
    req.on('timeout', () => req.destroy(new Error('request timed out')))
    req.on('error', reject)
    req.end()
  })
}

function curl(args: string[]): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile('curl', ['-sS', '--max-time', '5', '--cacert', pki.certs.ca, ...args], (error, out) => {
      resolve({ code: error ? Number((error as { code?: number }).code ?? 1) : 0, out })
    })
  })
}

async function hup(c: Corral): Promise<void> {
  await c.hup()
}

describe('HTTP/2 and HTTP/1.1 on one TLS port', () => {
  it('ALPN gives h2 to clients that offer it and HTTP/1.1 to the others, with the same app', async ({ signal }) => {
    const port = await freePort()
    const c = start(port, ['-w', '1'], signal)
    await c.untilReady()

    const s = await session(port)
    expect(s.alpnProtocol).toBe('h2')
    const a = await h2Get(s)
    const b = await h2Get(s) // multiplexed on the same session
    s.close()
    expect(a.status).toBe(200)
    expect(a.info).toMatchObject({ version: '2.0', encrypted: true, host: `127.0.0.1:${port}` }) // Host made from :authority
    expect(b.info.pid).toBe(a.info.pid)

    const h1 = await h1Get(port)
    expect(h1).toMatchObject({
      status: 200,
      alpn: 'http/1.1',
      info: { version: '1.1', encrypted: true, pid: a.info.pid },
    })

    const viaCurl2 = await curl(['--http2', '-w', '\n%{http_version}', `https://127.0.0.1:${port}/`])
    expect(viaCurl2.code).toBe(0)
    expect(viaCurl2.out.split('\n')[1]).toBe('2')
    expect(JSON.parse(viaCurl2.out.split('\n')[0]!)).toMatchObject({ version: '2.0', host: `127.0.0.1:${port}` })
    const viaCurl1 = await curl(['--http1.1', '-w', '\n%{http_version}', `https://127.0.0.1:${port}/`])
    expect(viaCurl1.out.split('\n')[1]).toBe('1.1')
    // No warning about connection headers on HTTP/2 responses, no error.
    expect(c.log()).not.toMatch(/Warning|Error/)
  })

  it('HUP drains an HTTP/2 session with GOAWAY: the stream in flight finishes, the old worker exits; INT closes sessions at once', async ({
    signal,
  }) => {
    const port = await freePort()
    const c = start(port, ['-w', '1'], signal)
    await c.untilReady()
    const s = await session(port)
    const old = (await h2Get(s)).info.pid
    let goaway: number | undefined
    s.on('goaway', (code) => (goaway = code))
    const closed = new Promise<void>((resolve) => s.once('close', resolve))

    const slow = await h2InFlight(s, '/slow?ms=1500')
    await c.hup()
    const answer = await slow.done
    expect(answer).toMatchObject({ status: 200, info: { pid: old } })
    await closed
    expect(goaway).toBe(constants.NGHTTP2_NO_ERROR)
    // Gone as soon as its last stream ended, not at --graceful-timeout (30 s).
    await waitFor(() => !isAlive(old), { timeoutMs: 5000, what: 'the old worker to exit' })

    const next = await session(port)
    expect((await h2Get(next)).info.pid).not.toBe(old)
    const nextClosed = new Promise<void>((resolve) => next.once('close', resolve))
    next.on('error', () => {})
    const pending = await h2InFlight(next, '/slow?ms=600000')
    c.signal('SIGINT')
    expect((await c.exited).code).toBe(0)
    await nextClosed
    expect(await pending.done).toBeInstanceOf(Error)
    expect(c.log()).not.toMatch(/TypeError|Uncaught/)
  })

  it('an Express app is refused at boot with h2 (exit 4, the reason), rather than crashing on the first HTTP/2 request', async ({
    signal,
  }) => {
    const port = await freePort()
    const c = start(port, ['-w', '1'], signal, EXPRESS)
    expect((await c.exited).code).toBe(4)
    expect(c.log()).toMatch(
      /App failed to load: an Express app can't be served over HTTP\/2 .*: use --http-protocols h1/,
    )
  })

  it('reloads under load over HTTP/2 and HTTP/1.1 fail no request', async ({ signal }) => {
    const port = await freePort()
    const c = start(port, ['-w', '2'], signal)
    await c.untilReady()
    const h2 = h2Load(port, 3)
    const h1 = h1Load(port, 2)
    // Each reload happens under load, and the load goes on past it.
    const answered = async () => {
      const [ok2, ok1] = [h2.seen().ok, h1.seen().ok]
      await waitFor(() => h2.seen().ok >= ok2 + 20 && h1.seen().ok >= ok1 + 10, { what: 'more answers' })
    }
    await answered()
    for (let i = 0; i < 2; i++) {
      await hup(c)
      await answered()
    }
    const [r2, r1] = await Promise.all([h2.stop(), h1.stop()])
    expect(r2.errors).toEqual([])
    // Refused streams (a request crossing the GOAWAY) are rare and were never processed.
    expect(r2.retried).toBeLessThanOrEqual(10)
    expect(r1.errors).toEqual([])
    expect(r2.ok).toBeGreaterThan(50)
    expect(r1.ok).toBeGreaterThan(20)
    // Both generations answered: the load spanned the reloads.
    expect(r2.pids.size).toBeGreaterThanOrEqual(4)
  })
})

interface LoadResult {
  ok: number
  errors: string[]
  /** Streams the server refused (GOAWAY before it saw them): never processed, so retried, as RFC 9113 §8.7 allows. */
  retried: number
  pids: Set<number>
}

/** Request loops over HTTP/2 sessions; a session that got GOAWAY is replaced, as browsers do. */
function h2Load(port: number, loops: number) {
  const result: LoadResult = { ok: 0, errors: [], retried: 0, pids: new Set() }
  let running = true
  const sessions = new Set<ClientHttp2Session>()
  const loop = async () => {
    let s: ClientHttp2Session | undefined
    while (running) {
      if (!s || s.closed || s.destroyed) {
        try {
          s = await session(port)
        } catch (err) {
          result.errors.push(`connect: ${(err as Error).message}`)
          return
        }
        s.on('error', () => {})
        sessions.add(s)
      }
      try {
        const { status, info } = await h2Get(s)
        if (status === 200) {
          result.ok++
          result.pids.add(info.pid)
        } else result.errors.push(`status ${status}`)
      } catch (err) {
        const e = err as Error & { code?: string }
        // Not sent (the session already had GOAWAY) or refused unprocessed: safe to send again.
        if (
          e.code === 'ERR_HTTP2_GOAWAY_SESSION' ||
          e.code === 'ERR_HTTP2_INVALID_SESSION' ||
          /NGHTTP2_REFUSED_STREAM/.test(e.message)
        )
          result.retried++
        else result.errors.push(`${e.code ?? ''} ${e.message}`)
        s = undefined
      }
    }
  }
  const all = Array.from({ length: loops }, loop)
  return {
    seen: (): Readonly<LoadResult> => result,
    async stop() {
      running = false
      await Promise.all(all)
      for (const s of sessions) s.close()
      return result
    },
  }
}

/** Request loops over kept-alive HTTPS connections. */
function h1Load(port: number, loops: number) {
  const result: LoadResult = { ok: 0, errors: [], retried: 0, pids: new Set() }
  const agent = new Agent({ keepAlive: true, maxSockets: loops, ca: pki.caPem })
  let running = true
  const loop = async () => {
    while (running) {
      try {
        const { status, info } = await h1Get(port, agent)
        if (status === 200) {
          result.ok++
          result.pids.add(info.pid)
        } else result.errors.push(`status ${status}`)
      } catch (err) {
        result.errors.push((err as Error).message)
      }
    }
  }
  const all = Array.from({ length: loops }, loop)
  return {
    seen: (): Readonly<LoadResult> => result,
    async stop() {
      running = false
      await Promise.all(all)
      agent.destroy()
      return result
    },
  }
}
