// Bad input end to end: gunicorn's request limits at their edges, the
// request-smuggling shapes, and bad values for the settings. Every shape is
// also sent to a bare node:http server with default options, in this
// process, to pin what Node 24's parser rejects by itself and what only
// corral's guard (src/http/guard.ts) catches.
import { createServer, type Server } from 'node:http'
import { spawnSync } from 'node:child_process'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { BIN, fixture, freePort, killAll, startCorral, type Corral } from './helpers/corral.ts'
import { exchange, goodRequest, parseResponses } from './helpers/http-wire.ts'
import echo from './fixtures/app-echo.ts'
import { httpServerOptions, maxHeaderSize } from '../src/http/guard.ts'

afterAll(killAll)

async function corralOn(args: string[]): Promise<{ corral: Corral; port: number; worker: number }> {
  const port = await freePort()
  const corral = startCorral(['-w', '1', '-b', `127.0.0.1:${port}`, ...args, fixture('app-echo.ts')])
  await corral.untilReady()
  return { corral, port, worker: corral.workers()[0]! }
}

async function send(port: number, text: string) {
  const r = await exchange(port, Buffer.from(text, 'latin1'))
  return { statuses: parseResponses(r.data).map((x) => x.status), closed: r.closed, responses: parseResponses(r.data) }
}

const H = 'Host: localhost\r\n'
const get = (target: string, fields = H) => `GET ${target} HTTP/1.1\r\n${fields}Connection: close\r\n\r\n`
const fields = (n: number) => Array.from({ length: n }, (_, i) => `X-F${i}: v\r\n`).join('')

describe('limits at their edges (defaults: line 4094, 100 fields, 8190 bytes a field)', () => {
  let c: Awaited<ReturnType<typeof corralOn>>
  beforeAll(async () => {
    c = await corralOn([])
  })

  // "GET " + target + " HTTP/1.1" is the request line: 13 bytes plus the target.
  it('a request line of exactly 4094 bytes is served; 4095 gets 414 and the connection is closed', async () => {
    expect((await send(c.port, get(`/${'a'.repeat(4094 - 14)}`))).statuses).toEqual([200])
    const over = await send(c.port, get(`/${'a'.repeat(4095 - 14)}`))
    expect(over.statuses).toEqual([414])
    expect(over.closed).toBe(true)
    expect(over.responses[0]!.headers['connection']).toBe('close')
  })

  it('100 header fields are served; 101 get 431', async () => {
    // Host and Connection are two of them.
    expect((await send(c.port, get('/', H + fields(98)))).statuses).toEqual([200])
    expect((await send(c.port, get('/', H + fields(99)))).statuses).toEqual([431])
  })

  it('a field line of exactly 8190 bytes (name, ": ", value, CRLF) is served; 8191 gets 431', async () => {
    const field = (size: number) => `X-Big: ${'v'.repeat(size - 'X-Big: \r\n'.length)}\r\n`
    expect((await send(c.port, get('/', H + field(8190)))).statuses).toEqual([200])
    expect((await send(c.port, get('/', H + field(8191)))).statuses).toEqual([431])
  })

  it('a head far beyond every limit is cut off by the parser with 431, not buffered', async () => {
    const huge = await send(c.port, get('/', `${H}X-Huge: ${'v'.repeat(2_000_000)}\r\n`))
    expect(huge.statuses).toEqual([431])
  })

  it('a rejected request on a keep-alive connection ends it; the request before it was served', async () => {
    const both = await send(c.port, `GET /first HTTP/1.1\r\n${H}\r\n${get(`/${'a'.repeat(5000)}`)}`)
    expect(both.statuses).toEqual([200, 414])
    expect(both.closed).toBe(true)
  })

  it('after all that, the same worker serves', async () => {
    expect((await goodRequest(c.port))?.status).toBe(200)
    expect(c.corral.workers()).toEqual([c.worker])
  })
})

describe('0 lifts a limit (the head as a whole stays bounded)', () => {
  it('a 20 kB target, 500 fields and a 20 kB field are served', async () => {
    const c = await corralOn([
      '--limit-request-line',
      '0',
      '--limit-request-fields',
      '0',
      '--limit-request-field_size',
      '0',
    ])
    expect((await send(c.port, get(`/${'a'.repeat(20_000)}`))).statuses).toEqual([200])
    expect((await send(c.port, get('/', H + fields(500)))).statuses).toEqual([200])
    expect((await send(c.port, get('/', `${H}X-Big: ${'v'.repeat(20_000)}\r\n`))).statuses).toEqual([200])
  })
})

// [name, request, bare node:http's answer, corral's answer]. 'served' is a 200
// from the echo app; a number is the status, after which the connection closed.
const SHAPES: [string, string, number | 'served', number][] = [
  // What node:http's parser (llhttp, strict) already refuses:
  [
    'Content-Length with Transfer-Encoding',
    `POST / HTTP/1.1\r\n${H}Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`,
    400,
    400,
  ],
  [
    'two equal Content-Length fields',
    `POST / HTTP/1.1\r\n${H}Content-Length: 5\r\nContent-Length: 5\r\n\r\nhello`,
    400,
    400,
  ],
  [
    'two different Content-Length fields',
    `POST / HTTP/1.1\r\n${H}Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!`,
    400,
    400,
  ],
  ['Content-Length as a list', `POST / HTTP/1.1\r\n${H}Content-Length: 5, 5\r\n\r\nhello`, 400, 400],
  ['Content-Length with a sign', `POST / HTTP/1.1\r\n${H}Content-Length: +5\r\n\r\nhello`, 400, 400],
  ['Content-Length in hex', `POST / HTTP/1.1\r\n${H}Content-Length: 0x5\r\n\r\nhello`, 400, 400],
  ['Content-Length empty', `POST / HTTP/1.1\r\n${H}Content-Length: \r\n\r\nhello`, 400, 400],
  [
    'final coding other than chunked',
    `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n`,
    400,
    400,
  ],
  ['only a non-chunked coding', `POST / HTTP/1.1\r\n${H}Transfer-Encoding: gzip\r\n\r\nhello`, 400, 400],
  [
    'chunked twice',
    `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`,
    400,
    400,
  ],
  ['unknown coding xchunked', `POST / HTTP/1.1\r\n${H}Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n`, 400, 400],
  ['space before the colon', `POST / HTTP/1.1\r\n${H}Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n`, 400, 400],
  ['HTTP/1.1 without Host', 'GET / HTTP/1.1\r\n\r\n', 400, 400],
  ['bare LF line ends', `GET / HTTP/1.1\n${H.trimEnd()}\n\n`, 400, 400],
  ['NUL in a field value', `GET / HTTP/1.1\r\n${H}X: a\0b\r\n\r\n`, 400, 400],
  ['HTTP/1.2', `GET / HTTP/1.2\r\n${H}\r\n`, 400, 400],
  // What node:http serves and corral does not:
  ['two Host fields', 'GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n', 'served', 400],
  ['two Host fields, different case', 'GET / HTTP/1.1\r\nHost: a\r\nhOST: b\r\n\r\n', 'served', 400],
  ['a Host value that is no host', 'GET / HTTP/1.1\r\nHost: a b/c\r\n\r\n', 'served', 400],
  [
    'two Content-Type fields',
    `POST / HTTP/1.1\r\n${H}Content-Type: a/b\r\nContent-Type: c/d\r\nContent-Length: 0\r\n\r\n`,
    'served',
    400,
  ],
  [
    'chunked in HTTP/1.0',
    'POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n',
    'served',
    400,
  ],
  ['HTTP/2.0 on an HTTP/1 connection', `GET / HTTP/2.0\r\n${H}\r\n`, 'served', 505],
  ['HTTP/0.9 request line', 'GET /\r\n\r\n', 'served', 505],
  ['asterisk-form with GET', `GET * HTTP/1.1\r\n${H}\r\n`, 'served', 400],
  ['CONNECT', `CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n`, 400, 501],
]

describe('request-smuggling shapes: bare node:http against corral', () => {
  let c: Awaited<ReturnType<typeof corralOn>>
  let bare: Server
  let barePort: number
  beforeAll(async () => {
    c = await corralOn([])
    bare = createServer(echo)
    await new Promise<void>((resolve) => bare.listen(0, '127.0.0.1', resolve))
    barePort = (bare.address() as { port: number }).port
  })
  afterAll(() => {
    bare.close()
    bare.closeAllConnections()
  })

  it.each(SHAPES)('%s', async (_name, text, nodeAnswer, corralAnswer) => {
    const fromNode = await send(barePort, text)
    // CONNECT with no 'connect' listener: node:http closes without a word.
    if (nodeAnswer === 'served') expect(fromNode.statuses).toEqual([200])
    else expect(fromNode.statuses).toEqual(text.startsWith('CONNECT') ? [] : [nodeAnswer])

    const fromCorral = await send(c.port, text)
    expect(fromCorral.statuses).toEqual([corralAnswer])
    expect(fromCorral.closed).toBe(true)
    expect(fromCorral.responses[0]!.headers['connection']).toBe('close')
  })

  it('a good request pipelined before a bad one is answered before the 400', async () => {
    const r = await send(
      c.port,
      `GET /one HTTP/1.1\r\n${H}\r\nGET /two HTTP/1.1\r\n${H}Content-Length: 1\r\nContent-Length: 2\r\n\r\n`,
    )
    expect(r.statuses).toEqual([200, 400])
    expect(JSON.parse(r.responses[0]!.body.toString('utf8')).url).toBe('/one')
  })

  it('bytes after a Connection: close request are ignored, and that request is still answered', async () => {
    const r = await send(c.port, `GET /one HTTP/1.1\r\n${H}Connection: close\r\n\r\nGET /two HTTP/1.1\r\n${H}\r\n`)
    expect(r.statuses).toEqual([200])
    expect(JSON.parse(r.responses[0]!.body.toString('utf8')).url).toBe('/one')
  })

  it('the worker that got all of these is the one serving now', async () => {
    expect((await goodRequest(c.port))?.status).toBe(200)
    expect(c.corral.workers()).toEqual([c.worker])
    expect(c.corral.log()).not.toMatch(/Uncaught|Error handling request/)
  })
})

describe('bad values', () => {
  it('each bad limit or timeout is one line naming the flag, exit 2, nothing started', () => {
    const r = spawnSync(
      process.execPath,
      [
        BIN,
        '--limit-request-line',
        '-1',
        '--limit-request-fields',
        'many',
        '--limit-request-field_size',
        '1.5',
        '--headers-timeout',
        'soon',
        fixture('app-echo.ts'),
      ],
      { encoding: 'utf8', timeout: 20_000 },
    )
    expect(r.status).toBe(2)
    const errors = r.stderr.split('\n').filter((l) => l.startsWith('corral: error:'))
    expect(errors).toHaveLength(4)
    for (const flag of [
      '--limit-request-line',
      '--limit-request-fields',
      '--limit-request-field_size',
      '--headers-timeout',
    ]) {
      expect(errors.some((l) => l.includes(flag))).toBe(true)
    }
    expect(r.stderr).not.toMatch(/^\s+at /m)
  })
})

describe('node:http options derived from the settings', () => {
  const defaults = {
    limitRequestLine: 4094,
    limitRequestFields: 100,
    limitRequestFieldSize: 8190,
    headersTimeout: 20,
    requestTimeout: 60,
  }

  it("bounds the head as gunicorn bounds its header buffer, with gunicorn's values standing in for 0", () => {
    expect(maxHeaderSize(defaults)).toBe(4094 + 100 * 8192 + 4)
    expect(maxHeaderSize({ ...defaults, limitRequestLine: 0, limitRequestFieldSize: 0 })).toBe(8190 + 100 * 8192 + 4)
    expect(maxHeaderSize({ ...defaults, limitRequestFields: 0 })).toBe(4094 + 32768 * 8192 + 4)
    expect(maxHeaderSize({ ...defaults, limitRequestFields: 1e9 })).toBe(2 ** 31 - 1)
  })

  it('caps the head timeout at the request timeout, and looks for expired connections often enough', () => {
    expect(httpServerOptions(defaults)).toMatchObject({
      headersTimeout: 20_000,
      requestTimeout: 60_000,
      connectionsCheckingInterval: 1000,
    })
    expect(httpServerOptions({ ...defaults, headersTimeout: 90 })).toMatchObject({ headersTimeout: 60_000 })
    expect(httpServerOptions({ ...defaults, headersTimeout: 1, requestTimeout: 2 })).toMatchObject({
      connectionsCheckingInterval: 250,
    })
    expect(httpServerOptions({ ...defaults, headersTimeout: 0, requestTimeout: 0 })).toMatchObject({
      headersTimeout: 0,
      requestTimeout: 0,
    })
    expect(httpServerOptions({ ...defaults, headersTimeout: 30, requestTimeout: 0 })).toMatchObject({
      headersTimeout: 30_000,
      requestTimeout: 0,
    })
    // node:http accepts every combination corral derives.
    for (const [h, r] of [
      [20, 60],
      [90, 60],
      [0, 0],
      [30, 0],
      [0, 5],
    ]) {
      expect(() =>
        createServer(httpServerOptions({ ...defaults, headersTimeout: h!, requestTimeout: r! })),
      ).not.toThrow()
    }
  })
})

describe("upgrade requests (node:http's 'upgrade' event) pass the same checks", () => {
  it('a handshake with two Host fields is refused before the app sees it; a good one is upgraded', async () => {
    const port = await freePort()
    const corral = startCorral(['-w', '1', '-b', `127.0.0.1:${port}`, fixture('app-upgrade-fn.ts')])
    await corral.untilReady()
    const handshake = (hosts: string) => `GET /chat HTTP/1.1\r\n${hosts}Upgrade: echo\r\nConnection: Upgrade\r\n\r\n`
    const bad = await exchange(port, Buffer.from(handshake('Host: a\r\nHost: b\r\n')))
    expect(parseResponses(bad.data).map((r) => r.status)).toEqual([400])
    expect(bad.closed).toBe(true)
    const good = await exchange(port, Buffer.from(handshake('Host: a\r\n')), { timeoutMs: 500, keepOpen: true })
    expect(good.data.toString('latin1')).toMatch(/^HTTP\/1\.1 101 /)
  })
})
