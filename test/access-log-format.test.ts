// The access log's formatter and byte count, on real requests to an
// in-process node:http server (and a real Express app), written through a
// real log file. The end-to-end behaviour with corral is in access-log.test.ts.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import express from 'express'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { DEFAULT_ACCESS_LOG_FORMAT, compileAccessLog, parseAccessLogFormat } from '../src/logging/access-log-format.ts'
import { withAccessLog } from '../src/logging/access-log.ts'
import { closeLogFiles, lineChunks } from '../src/logging/log-file.ts'

const dir = mkdtempSync(join(tmpdir(), 'corral-access-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

describe('parsing a format', () => {
  it('takes every gunicorn atom, %% and braced names', () => {
    const all =
      '%(h)s %(l)s %(u)s %(t)s %(r)s %(m)s %(U)s %(q)s %(H)s %(s)s %(B)s %(b)s %(f)s %(a)s %(T)s %(M)s %(D)s %(L)s %(p)s %({X-Req}i)s %({etag}o)s %({HOME}e)s 100%%'
    const parts = parseAccessLogFormat(all)
    expect(typeof parts).not.toBe('string')
    expect(parts).toContainEqual({ kind: 'header-in', name: 'x-req' })
    expect(parts).toContainEqual({ kind: 'text', text: ' 100%' })
    expect(typeof parseAccessLogFormat(DEFAULT_ACCESS_LOG_FORMAT)).not.toBe('string')
  })

  it('names what is wrong with a bad format', () => {
    expect(parseAccessLogFormat('%(zz)s')).toMatch(/unknown atom %\(zz\)s \(atoms: h l u/)
    expect(parseAccessLogFormat('%(h)d')).toMatch(/%\(h\)d: write atoms as %\(NAME\)s/)
    expect(parseAccessLogFormat('%({bad header}i)s')).toMatch(/unknown atom/)
  })
})

// ---------------------------------------------------------------------------

const servers: Server[] = []
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))))
  await closeLogFiles()
})

let n = 0
/** Serves `app` with the access log on; resolves the port and a reader of the log's lines. */
async function logged(app: (req: IncomingMessage, res: ServerResponse) => void, format: string, json = false) {
  const file = join(dir, `access-${++n}.log`)
  const handler = withAccessLog(app, { accessLogfile: file, accessLogformat: format, accessLogJson: json }, (m, e) => {
    throw new Error(`${m}: ${String(e)}`)
  })
  const server = createServer(handler)
  servers.push(server)
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  const { port } = server.address() as { port: number }
  const lines = async (count: number) => {
    for (let i = 0; i < 200; i++) {
      const text = readFileSync(file, 'utf8')
      const all = text.split('\n').filter(Boolean)
      if (all.length >= count) return all
      await new Promise((r) => setTimeout(r, 10))
    }
    throw new Error(`fewer than ${count} lines in ${file}: ${readFileSync(file, 'utf8')}`)
  }
  return { port, lines }
}

function call(port: number, path: string, { method = 'GET', headers = {} as Record<string, string> } = {}) {
  return new Promise<{ status: number; body: Buffer }>((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method, headers, agent: false }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }))
    })
    req.on('error', reject)
    req.end()
  })
}

describe('lines', () => {
  it('the default format is Apache combined, as gunicorn writes it', async () => {
    const { port, lines } = await logged((_req, res) => res.end('hello'), DEFAULT_ACCESS_LOG_FORMAT)
    await call(port, '/path?x=1', { headers: { referer: 'http://ref.example/', 'user-agent': 'test-agent/1' } })
    const [line] = await lines(1)
    expect(line).toMatch(
      /^127\.0\.0\.1 - - \[\d{2}\/[A-Z][a-z]{2}\/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4}\] "GET \/path\?x=1 HTTP\/1\.1" 200 5 "http:\/\/ref\.example\/" "test-agent\/1"$/,
    )
  })

  it('every atom', async () => {
    process.env.CORRAL_TEST_VAR = 'from-env'
    const format =
      'h=%(h)s l=%(l)s u=%(u)s r="%(r)s" m=%(m)s U=%(U)s q=%(q)s H=%(H)s s=%(s)s B=%(B)s b=%(b)s f=%(f)s a=%(a)s ' +
      'T=%(T)s M=%(M)s D=%(D)s L=%(L)s p=%(p)s in=%({X-Request-Id}i)s out=%({X-Out}o)s env=%({CORRAL_TEST_VAR}e)s none=%({x-none}i)s 100%%'
    const { port, lines } = await logged((_req, res) => {
      res.setHeader('x-out', 'yes')
      setTimeout(() => res.end('ok'), 30)
    }, format)
    await call(port, '/a/b?c=d&e', {
      method: 'POST',
      headers: { authorization: `Basic ${Buffer.from('ada:secret').toString('base64')}`, 'x-request-id': 'r-1' },
    })
    const [line] = await lines(1)
    expect(line).toMatch(
      new RegExp(
        '^h=127\\.0\\.0\\.1 l=- u=ada r="POST /a/b\\?c=d&e HTTP/1\\.1" m=POST U=/a/b q=c=d&e H=HTTP/1\\.1 s=200 B=2 b=2 f=- a=- ' +
          `T=0 M=(\\d+) D=(\\d+) L=0\\.(\\d{6}) p=<${process.pid}> in=r-1 out=yes env=from-env none=- 100%$`,
      ),
    )
    const [, ms, us] = /M=(\d+) D=(\d+)/.exec(line!)!
    expect(Number(ms)).toBeGreaterThanOrEqual(29)
    expect(Math.floor(Number(us) / 1000)).toBe(Number(ms))
  })

  it('JSON lines: one key per atom, numbers as numbers, absent as null', async () => {
    const { port, lines } = await logged(
      (_req, res) => res.end('{}'),
      `${DEFAULT_ACCESS_LOG_FORMAT} %(D)s %({x-trace}i)s %(p)s`,
      true,
    )
    await call(port, '/j?k=v', { headers: { 'x-trace': 'a"b\\c' } })
    const entry = JSON.parse((await lines(1))[0]!)
    expect(entry).toMatchObject({
      remote_addr: '127.0.0.1',
      ident: null,
      user: null,
      request: 'GET /j?k=v HTTP/1.1',
      status: 200,
      bytes: 2,
      referer: null,
      user_agent: null,
      'req.x-trace': 'a"b\\c',
      pid: process.pid,
    })
    expect(entry.time).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/)
    expect(typeof entry.request_time_us).toBe('number')
  })
})

describe('body bytes', () => {
  it('counts streamed, multi-byte and Buffer writes; HEAD and 304 send none', async () => {
    const { port, lines } = await logged((req, res) => {
      if (req.url === '/304') {
        res.writeHead(304)
        return res.end()
      }
      res.write('héllo ') // 7 bytes
      res.write(Buffer.from([1, 2, 3]))
      res.write('ff', 'hex') // 1 byte
      res.end('€') // 3 bytes
    }, '%(m)s %(U)s %(s)s %(B)s %(b)s')
    const got = await call(port, '/stream')
    expect(got.body.length).toBe(14)
    await call(port, '/stream', { method: 'HEAD' })
    await call(port, '/304')
    expect(await lines(3)).toEqual(['GET /stream 200 14 14', 'HEAD /stream 200 0 -', 'GET /304 304 0 -'])
  })

  it('counts through Express, which swaps the response prototype', async () => {
    const app = express()
    app.get('/x', (_req, res) => {
      res.send('twelve bytes')
    })
    const { port, lines } = await logged(app, '%(s)s %(b)s')
    await call(port, '/x')
    await call(port, '/nope')
    const [ok, missing] = await lines(2)
    expect(ok).toBe('200 12')
    expect(missing).toMatch(/^404 \d+$/)
  })

  it('logs a response the client abandoned', async () => {
    const { port, lines } = await logged((_req, res) => {
      res.write('partial')
      // never ends: the client goes away
    }, '%(s)s %(B)s')
    await new Promise<void>((resolve) => {
      const req = request({ host: '127.0.0.1', port, path: '/', agent: false }, (res) =>
        res.once('data', () => {
          req.destroy()
          resolve()
        }),
      )
      req.end()
    })
    expect(await lines(1)).toEqual(['200 7'])
  })
})

describe('compiled once', () => {
  it('a format is a function of the request, built before any request', () => {
    const { format, needsBytes } = compileAccessLog('%(m)s %(U)s')
    expect(typeof format).toBe('function')
    expect(needsBytes).toBe(false)
    expect(compileAccessLog('%(b)s').needsBytes).toBe(true)
  })
})

describe('writes to a shared pipe', () => {
  it('are cut at line ends, at most PIPE_BUF bytes each', () => {
    const line = `${'x'.repeat(99)}\n`
    const chunks = lineChunks(line.repeat(100), 4096)
    expect(chunks.join('')).toBe(line.repeat(100))
    for (const c of chunks) {
      expect(Buffer.byteLength(c)).toBeLessThanOrEqual(4096)
      expect(c.endsWith('\n')).toBe(true)
    }
    expect(lineChunks('short\n', 4096)).toEqual(['short\n'])
  })
})
