// Proxies: the allow lists, X-Forwarded-For and the secure scheme headers,
// and the PROXY protocol, first as functions, then against a real corral with
// real clients on loopback. 127.0.0.0/8 is all loopback on Linux, so a client
// bound to 127.0.0.3 is a peer that the default --forwarded-allow-ips
// (127.0.0.1,::1) does not trust. The test behind a real nginx is in
// proxy-nginx.test.ts.
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { Agent, request } from 'node:http'
import { request as httpsRequest } from 'node:https'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Duplex } from 'node:stream'
import { connect as tlsConnect } from 'node:tls'
import { afterEach, describe, expect, it } from 'vitest'
import { BIN, ROOT, fixture, freePort, killAll, startCorral, waitFor } from './helpers/corral.ts'
import { selfSignedCert } from './helpers/tls-certs.ts'
import { parseResponses } from './helpers/http-wire.ts'
import {
  allowListProblem,
  clientOf,
  parseAllowList,
  parseSecureSchemeHeaders,
  secureSchemeHeadersProblem,
} from '../src/http/forwarded.ts'
import { parseProxyHeader } from '../src/http/proxy-protocol.ts'

afterEach(killAll)

const CORPUS = `${ROOT}test/corpus/http-requests/`

describe('allow lists', () => {
  it('addresses, networks, * and unix peers', () => {
    const local = parseAllowList('127.0.0.1,::1')
    expect(local.allows('127.0.0.1')).toBe(true)
    expect(local.allows('::1')).toBe(true)
    // A dual-stack socket reports IPv4 peers in IPv4-mapped form.
    expect(local.allows('::ffff:127.0.0.1')).toBe(true)
    expect(local.allows('127.0.0.2')).toBe(false)
    expect(local.allows('10.0.0.1')).toBe(false)
    // A unix socket peer has no address: trusted, as in gunicorn.
    expect(local.allows(undefined)).toBe(true)

    const nets = parseAllowList(['10.0.0.0/8', ' 192.168.1.0/24 , fd00::/8'])
    expect(nets.allows('10.200.3.4')).toBe(true)
    expect(nets.allows('192.168.1.77')).toBe(true)
    expect(nets.allows('192.168.2.1')).toBe(false)
    expect(nets.allows('fd12::1')).toBe(true)
    expect(nets.allows('fe80::1')).toBe(false)

    const any = parseAllowList('*')
    expect(any.any).toBe(true)
    expect(any.allows('203.0.113.9')).toBe(true)
    expect(any.lists('203.0.113.9')).toBe(false)

    const none = parseAllowList('')
    expect(none.allows('127.0.0.1')).toBe(false)
  })

  it('a bad entry is named', () => {
    expect(allowListProblem('127.0.0.1,localhost')).toMatch(/"localhost" is not an IP address or network/)
    expect(allowListProblem('10.0.0.0/33')).toMatch(/"10.0.0.0\/33": the prefix length must be 0 to 32/)
    expect(allowListProblem('::/129')).toMatch(/0 to 128/)
    expect(allowListProblem('10.0.0.0/x')).toMatch(/prefix length/)
    expect(allowListProblem('*, 10.0.0.0/8, ::1')).toBeUndefined()
  })
})

describe('X-Forwarded-For', () => {
  const local = parseAllowList('127.0.0.1,::1')
  const address = (xff: string, allow = local) => clientOf(xff, allow)?.address

  it('is read from the right, skipping listed proxies', () => {
    // nginx appends the address it saw; what the client sent itself is to its left.
    expect(address('6.6.6.6, 203.0.113.7')).toBe('203.0.113.7')
    expect(address('203.0.113.7, 127.0.0.1')).toBe('203.0.113.7')
    expect(address('203.0.113.7,127.0.0.1,::1')).toBe('203.0.113.7')
    // Only proxies: the leftmost is the client.
    expect(address('127.0.0.1, ::1')).toBe('127.0.0.1')
    expect(clientOf('2001:db8::7', local)).toEqual({ address: '2001:db8::7', port: undefined, family: 'IPv6' })
  })

  it('with *, the rightmost entry: what the one proxy saw, not what the client wrote', () => {
    const any = parseAllowList('*')
    expect(address('6.6.6.6, 203.0.113.7', any)).toBe('203.0.113.7')
    expect(address('6.6.6.6, 127.0.0.1', any)).toBe('127.0.0.1')
  })

  it('ports and brackets are taken off; anything not an address gives no client', () => {
    expect(address('203.0.113.7:5678')).toBe('203.0.113.7')
    expect(address('[2001:DB8::7]:443')).toBe('2001:db8::7')
    expect(address('[::1]')).toBe('::1')
    expect(address('unknown')).toBeUndefined()
    expect(address('6.6.6.6, _hidden')).toBeUndefined()
    expect(address('')).toBeUndefined()
  })
})

describe('--secure-scheme-headers', () => {
  it("gunicorn's default, an object, and bad values", () => {
    expect([
      ...parseSecureSchemeHeaders('X-FORWARDED-PROTOCOL=ssl,X-FORWARDED-PROTO=https,X-FORWARDED-SSL=on'),
    ]).toEqual([
      ['x-forwarded-protocol', 'ssl'],
      ['x-forwarded-proto', 'https'],
      ['x-forwarded-ssl', 'on'],
    ])
    expect([...parseSecureSchemeHeaders({ 'X-Scheme': 'HTTPS' })]).toEqual([['x-scheme', 'https']])
    expect(parseSecureSchemeHeaders('').size).toBe(0)
    expect(secureSchemeHeadersProblem('X-Proto')).toMatch(/"X-Proto": expected NAME=VALUE/)
    expect(secureSchemeHeadersProblem('X Proto=https')).toMatch(/is not a header name/)
    expect(secureSchemeHeadersProblem('X-Proto=')).toMatch(/empty/)
  })
})

describe('PROXY protocol headers', () => {
  const parse = (s: string | Buffer) => parseProxyHeader(typeof s === 'string' ? Buffer.from(s, 'latin1') : s)

  it('v1: TCP4, TCP6, UNKNOWN', () => {
    const line = 'PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n'
    expect(parse(`${line}GET / HTTP/1.1\r\n`)).toEqual({
      kind: 'header',
      version: 1,
      length: line.length,
      source: { address: '192.168.0.1', port: 56324, family: 'IPv4' },
    })
    expect(parse('PROXY TCP6 2001:db8::1 ::1 1 65535\r\n')).toMatchObject({
      source: { address: '2001:db8::1', port: 1, family: 'IPv6' },
    })
    expect(parse('PROXY UNKNOWN\r\n')).toEqual({ kind: 'header', version: 1, length: 15 })
    expect(parse('PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n')).toMatchObject({ kind: 'header', version: 1 })
  })

  it('tells a header from a request only when it can: more bytes, none, or a header', () => {
    for (const partial of ['P', 'PROX', 'PROXY TCP4 1.2.3.4', '\r\n', '\r\n\r\n\0\r\nQU', '\r\n\r\n\0\r\nQUIT\n\x21']) {
      expect(parse(partial), JSON.stringify(partial)).toEqual({ kind: 'more' })
    }
    for (const request of ['GET / HTTP/1.1\r\n', 'POST', 'PUT /', 'PATCH', '\r\nGET', 'PROXZ']) {
      expect(parse(request), JSON.stringify(request)).toEqual({ kind: 'none' })
    }
  })

  it('v1: what gunicorn calls an invalid PROXY line is invalid here too', () => {
    for (const name of ['pp_01', 'pp_02', 'pp_03']) {
      expect(parse(readFileSync(`${CORPUS}invalid/${name}.raw`)), name).toMatchObject({ kind: 'invalid' })
    }
    expect(parse('PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n')).toMatchObject({ kind: 'more' })
    expect(parse(`PROXY TCP4 1.2.3.4 5.6.7.8 1 ${'2'.repeat(120)}`)).toMatchObject({ kind: 'invalid' })
    expect(parse('PROXY TCP4 ::1 5.6.7.8 1 2\r\n')).toMatchObject({ kind: 'invalid' })
    expect(parse('PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n')).toMatchObject({ kind: 'invalid' })
    expect(parse('PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n')).toMatchObject({ kind: 'invalid' })
    expect(parse('PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n')).toMatchObject({ kind: 'invalid' })
  })

  const v2 = (command: number, family: number, body: Buffer) =>
    Buffer.concat([
      Buffer.from('\r\n\r\n\0\r\nQUIT\n', 'latin1'),
      Buffer.from([0x20 | command, family, body.length >> 8, body.length & 0xff]),
      body,
    ])

  it('v2: IPv4, IPv6, TLVs skipped, LOCAL, UNSPEC, and cut short', () => {
    const ipv4 = Buffer.from([203, 0, 113, 7, 10, 0, 0, 1, 0x1f, 0x90, 0, 80, /* a TLV */ 0x04, 0, 1, 0])
    expect(parse(Buffer.concat([v2(1, 0x11, ipv4), Buffer.from('GET')]))).toEqual({
      kind: 'header',
      version: 2,
      length: 16 + ipv4.length,
      source: { address: '203.0.113.7', port: 8080, family: 'IPv4' },
    })
    const ipv6 = Buffer.alloc(36)
    Buffer.from('20010db8000000000000000000000007', 'hex').copy(ipv6, 0)
    ipv6[31] = 1
    ipv6.writeUInt16BE(5555, 32)
    ipv6.writeUInt16BE(443, 34)
    expect(parse(v2(1, 0x21, ipv6))).toMatchObject({ source: { address: '2001:db8::7', port: 5555, family: 'IPv6' } })
    expect(parse(v2(0, 0x00, Buffer.alloc(0)))).toEqual({ kind: 'header', version: 2, length: 16 })
    expect(parse(v2(1, 0x00, Buffer.alloc(0)))).toEqual({ kind: 'header', version: 2, length: 16 })
    expect(parse(v2(1, 0x11, ipv4).subarray(0, 20))).toEqual({ kind: 'more' })
    expect(parse(v2(1, 0x11, ipv4.subarray(0, 8)))).toMatchObject({ kind: 'invalid' })
    expect(parse(v2(2, 0x11, ipv4))).toMatchObject({ kind: 'invalid' })
    const badVersion = v2(1, 0x11, ipv4)
    badVersion[12] = 0x11
    expect(parse(badVersion)).toMatchObject({ kind: 'invalid' })
  })

  it("v2: gunicorn's corpus cases", () => {
    const v4 = readFileSync(`${CORPUS}valid/pp_04.raw`)
    const h4 = parseProxyHeader(v4)
    expect(h4).toMatchObject({ kind: 'header', version: 2, source: { family: 'IPv4' } })
    expect(v4.subarray((h4 as { length: number }).length).toString('latin1')).toMatch(/^GET \/proxy\/v2\/ipv4 /)
    const v6 = readFileSync(`${CORPUS}valid/pp_05.raw`)
    const h6 = parseProxyHeader(v6)
    expect(h6).toMatchObject({ kind: 'header', version: 2, source: { family: 'IPv6' } })
    expect(v6.subarray((h6 as { length: number }).length).toString('latin1')).toMatch(/^GET \/proxy\/v2\/ipv6 /)
  })
})

// ---------------------------------------------------------------------------
// Against a real corral

interface Seen {
  pid: number
  remoteAddress: string | null
  remotePort: number | null
  remoteFamily: string | null
  encrypted: boolean
  rawHeaders: string[]
  headers: Record<string, string>
  headersDistinct: Record<string, string[]>
}

function ask(
  port: number,
  path: string,
  {
    headers = {},
    localAddress,
    agent,
  }: { headers?: Record<string, string>; localAddress?: string; agent?: Agent } = {},
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, headers, localAddress, agent: agent ?? false }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (c: string) => (body += c))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }))
    })
    req.on('error', reject)
    req.end()
  })
}

async function seen(port: number, path: string, options?: Parameters<typeof ask>[2]): Promise<Seen> {
  const r = await ask(port, path, options)
  expect(r.status, r.body).toBe(200)
  return JSON.parse(r.body) as Seen
}

/** Raw bytes from a chosen local address; resolves with everything received once the server closes. */
function raw(
  port: number,
  chunks: (string | Buffer)[],
  { localAddress = '127.0.0.1', timeoutMs = 3000 } = {},
): Promise<{ data: Buffer; closed: boolean }> {
  return new Promise((resolve) => {
    const got: Buffer[] = []
    const socket = connect({ port, host: '127.0.0.1', localAddress })
    const timer = setTimeout(() => finish(false), timeoutMs)
    const finish = (closed: boolean) => {
      clearTimeout(timer)
      socket.destroy()
      resolve({ data: Buffer.concat(got), closed })
    }
    socket.on('data', (c: Buffer) => got.push(c))
    socket.on('close', () => finish(true))
    socket.on('error', () => finish(true))
    socket.on('connect', async () => {
      for (const c of chunks) {
        socket.write(c)
        await new Promise((r) => setTimeout(r, 20))
      }
    })
  })
}

const bodies = (data: Buffer) =>
  parseResponses(data).map((r) => (r.status === 200 ? (JSON.parse(r.body.toString()) as Seen) : r.status))

async function start(app: string, args: string[], signal: AbortSignal) {
  const port = await freePort()
  const corral = startCorral(['-w', '1', '-b', `127.0.0.1:${port}`, ...args, fixture(app)], { signal })
  await corral.untilReady()
  return { corral, port }
}

const PROXY_HEADERS = {
  'X-Forwarded-For': '6.6.6.6, 203.0.113.7',
  'X-Forwarded-Proto': 'https',
  'X-Forwarded-Host': 'evil.example',
  'X-Forwarded-Port': '443',
  'X-Real-IP': '6.6.6.6',
  Forwarded: 'for=6.6.6.6;proto=https',
  'X-Forwarded-Ssl': 'on',
}

describe('--forwarded-allow-ips and --secure-scheme-headers, end to end', () => {
  it('a trusted peer names the client and the scheme; an untrusted one has its proxy headers removed; both in the access log', async ({
    signal,
  }) => {
    const { corral, port } = await start(
      'proxy-echo.ts',
      ['--access-logfile', '-', '--access-logformat', 'h=%(h)s %(U)s'],
      signal,
    )

    // From 127.0.0.1 (trusted by default), on one keep-alive connection.
    const agent = new Agent({ keepAlive: true, maxSockets: 1 })
    const viaProxy = await seen(port, '/trusted', { headers: PROXY_HEADERS, agent })
    expect(viaProxy).toMatchObject({
      remoteAddress: '203.0.113.7',
      remotePort: null,
      remoteFamily: 'IPv4',
      encrypted: true,
    })
    expect(viaProxy.headers).toMatchObject({
      'x-forwarded-for': '6.6.6.6, 203.0.113.7',
      'x-forwarded-proto': 'https',
      'x-real-ip': '6.6.6.6',
    })
    // The next request on the same connection says nothing: it is the peer's own again.
    const direct = await seen(port, '/same-connection', { agent })
    expect(direct).toMatchObject({ remoteAddress: '127.0.0.1', remoteFamily: 'IPv4', encrypted: false })
    expect(direct.remotePort).toBeGreaterThan(0)
    const http = await seen(port, '/http', {
      headers: { 'X-Forwarded-Proto': 'http', 'X-Forwarded-For': '198.51.100.1' },
      agent,
    })
    expect(http).toMatchObject({ remoteAddress: '198.51.100.1', encrypted: false })
    agent.destroy()

    // From 127.0.0.3: not trusted. Every proxy header is gone, from every view of the headers.
    const spoofed = await seen(port, '/untrusted', {
      headers: { ...PROXY_HEADERS, 'X-Kept': 'yes' },
      localAddress: '127.0.0.3',
    })
    expect(spoofed).toMatchObject({ remoteAddress: '127.0.0.3', encrypted: false })
    const names = spoofed.rawHeaders.filter((_, i) => i % 2 === 0).map((n) => n.toLowerCase())
    expect(names.sort()).toEqual(['connection', 'host', 'x-kept'])
    expect(Object.keys(spoofed.headers).sort()).toEqual(['connection', 'host', 'x-kept'])
    expect(Object.keys(spoofed.headersDistinct).sort()).toEqual(['connection', 'host', 'x-kept'])

    // gunicorn's invalid/019: scheme headers that disagree.
    const contradiction = await ask(port, '/contradiction', {
      headers: { 'X-Forwarded-Proto': 'https', 'X-Forwarded-Ssl': 'off' },
    })
    expect(contradiction.status).toBe(400)

    await waitFor(() => corral.log().includes('h=198.51.100.1 /http'), { what: 'access log lines' })
    const lines = corral
      .log()
      .split('\n')
      .filter((l) => l.startsWith('h='))
    expect(lines).toEqual([
      'h=203.0.113.7 /trusted',
      'h=127.0.0.1 /same-connection',
      'h=198.51.100.1 /http',
      'h=127.0.0.3 /untrusted',
    ])
  })

  it('a fetch app sees an https URL and the client address; CIDR lists; a changed --secure-scheme-headers', async ({
    signal,
  }) => {
    const { port } = await start(
      'proxy-fetch.ts',
      ['--forwarded-allow-ips', '127.0.0.0/29', '--secure-scheme-headers', 'X-Scheme=https'],
      signal,
    )
    const https = JSON.parse(
      (
        await ask(port, '/p?q=1', {
          headers: { 'X-Scheme': 'HTTPS', 'X-Forwarded-For': '203.0.113.9' },
          localAddress: '127.0.0.5',
        })
      ).body,
    )
    expect(https).toMatchObject({
      url: `https://127.0.0.1:${port}/p?q=1`,
      remoteAddress: '203.0.113.9',
      forwardedFor: '203.0.113.9',
    })
    // X-Forwarded-Proto is no scheme header here: ignored (and passed along, the peer being trusted).
    const plain = JSON.parse(
      (await ask(port, '/p', { headers: { 'X-Forwarded-Proto': 'https' }, localAddress: '127.0.0.5' })).body,
    )
    expect(plain).toMatchObject({
      url: `http://127.0.0.1:${port}/p`,
      remoteAddress: '127.0.0.5',
      forwardedProto: 'https',
    })
    // 127.0.0.9 is outside 127.0.0.0/29.
    const outside = JSON.parse(
      (
        await ask(port, '/p', {
          headers: { 'X-Scheme': 'https', 'X-Forwarded-For': '203.0.113.9' },
          localAddress: '127.0.0.9',
        })
      ).body,
    )
    expect(outside).toMatchObject({ url: `http://127.0.0.1:${port}/p`, remoteAddress: '127.0.0.9', forwardedFor: null })
  })
  it('Express, Koa and Fastify, left with their defaults, read the client and the scheme from the socket', async ({
    signal,
  }) => {
    const { port } = await start('proxy-frameworks.ts', [], signal)
    const headers = { 'X-Forwarded-For': '203.0.113.7', 'X-Forwarded-Proto': 'https' }
    for (const path of ['/express', '/koa', '/fastify']) {
      const r = await ask(port, path, { headers })
      expect(JSON.parse(r.body), path).toMatchObject({ ip: '203.0.113.7', protocol: 'https' })
      const direct = await ask(port, path, { localAddress: '127.0.0.3', headers })
      expect(JSON.parse(direct.body), path).toMatchObject({ ip: '127.0.0.3', protocol: 'http' })
    }
  })
})

describe('--proxy-protocol, end to end', () => {
  it('v1 and v2 from an allowed peer name the client; no header is fine; a bad one closes; from others a PROXY line is a 400', async ({
    signal,
  }) => {
    const { corral, port } = await start(
      'proxy-echo.ts',
      [
        '--proxy-protocol',
        '--proxy-allow-from',
        '127.0.0.1',
        '--access-logfile',
        '-',
        '--access-logformat',
        'pp=%(h)s %(U)s',
      ],
      signal,
    )
    const get = (path: string, close = true) =>
      `GET ${path} HTTP/1.1\r\nHost: x\r\n${close ? 'Connection: close\r\n' : ''}\r\n`

    // v1, arriving in pieces, then two pipelined requests on the same connection.
    const v1 = await raw(port, [
      'PRO',
      'XY TCP4 198.51.100.4 10.0.0.1 40000 ',
      '443\r\nGET /v1 HTTP/1.1\r\nHo',
      `st: x\r\n\r\n${get('/v1-again')}`,
    ])
    const [first, second] = bodies(v1.data) as Seen[]
    expect(first).toMatchObject({ remoteAddress: '198.51.100.4', remotePort: 40000, remoteFamily: 'IPv4' })
    expect(second).toMatchObject({ remoteAddress: '198.51.100.4', remotePort: 40000 })

    // v2, IPv6, header and request in one write.
    const body = Buffer.alloc(36)
    Buffer.from('20010db8000000000000000000000042', 'hex').copy(body, 0)
    body.writeUInt16BE(51000, 32)
    body.writeUInt16BE(443, 34)
    const v2 = Buffer.concat([
      Buffer.from('\r\n\r\n\0\r\nQUIT\n\x21\x21\x00\x24', 'latin1'),
      body,
      Buffer.from(get('/v2')),
    ])
    expect(bodies((await raw(port, [v2])).data)).toMatchObject([
      { remoteAddress: '2001:db8::42', remotePort: 51000, remoteFamily: 'IPv6' },
    ])

    // No header from an allowed peer: served as it is.
    expect(bodies((await raw(port, [get('/none')])).data)).toMatchObject([{ remoteAddress: '127.0.0.1' }])

    // A malformed header: 400 (gunicorn's InvalidProxyLine), closed, and the request after it never reaches the app.
    const bad = await raw(port, ['PROXY TCP4 not-an-ip 10.0.0.1 1 2\r\n', get('/bad')])
    expect(bad.closed).toBe(true)
    expect(parseResponses(bad.data).map((r) => r.status)).toEqual([400])

    // From 127.0.0.3, not in --proxy-allow-from: the PROXY line is just a bad request.
    const refused = await raw(port, [`PROXY TCP4 198.51.100.4 10.0.0.1 40000 443\r\n${get('/refused')}`], {
      localAddress: '127.0.0.3',
    })
    expect(refused.closed).toBe(true)
    expect(parseResponses(refused.data).map((r) => r.status)).toEqual([400])
    // ... and a plain request from it is served.
    expect(bodies((await raw(port, [get('/plain')], { localAddress: '127.0.0.3' })).data)).toMatchObject([
      { remoteAddress: '127.0.0.3' },
    ])

    // The client a PROXY header names is whom X-Forwarded-For trust is decided for: 198.51.100.4 is no trusted proxy.
    const spoof = await raw(port, [
      `PROXY TCP4 198.51.100.4 10.0.0.1 40000 443\r\nGET /spoof HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 6.6.6.6\r\nConnection: close\r\n\r\n`,
    ])
    const [spoofed] = bodies(spoof.data) as Seen[]
    expect(spoofed!.remoteAddress).toBe('198.51.100.4')
    expect(spoofed!.headers['x-forwarded-for']).toBeUndefined()

    await waitFor(() => corral.log().includes('pp=198.51.100.4 /spoof'), { what: 'access log lines' })
    const lines = corral
      .log()
      .split('\n')
      .filter((l) => l.startsWith('pp='))
    expect(lines).toEqual([
      'pp=198.51.100.4 /v1',
      'pp=198.51.100.4 /v1-again',
      'pp=2001:db8::42 /v2',
      'pp=127.0.0.1 /none',
      'pp=127.0.0.3 /plain',
      'pp=198.51.100.4 /spoof',
    ])
  })

  it('a peer that sends nothing is closed after --headers-timeout', async ({ signal }) => {
    const { port } = await start('proxy-echo.ts', ['--proxy-protocol', '--headers-timeout', '1'], signal)
    const t0 = Date.now()
    const silent = await raw(port, [], { timeoutMs: 5000 })
    expect(silent.closed).toBe(true)
    expect(Date.now() - t0).toBeGreaterThanOrEqual(900)
  })
})

describe('in front of TLS (corral serving HTTPS itself)', () => {
  it('a PROXY header before the TLS handshake names the client, in the same write as the ClientHello or not; https stays https', async ({
    signal,
  }) => {
    const dir = mkdtempSync(join(tmpdir(), 'corral-proxy-tls-'))
    signal.addEventListener('abort', () => rmSync(dir, { recursive: true, force: true }))
    selfSignedCert(dir)
    const { port } = await start(
      'proxy-echo.ts',
      ['--proxy-protocol', '--certfile', `${dir}/cert.pem`, '--keyfile', `${dir}/key.pem`],
      signal,
    )

    /** TLS over a TCP connection whose first bytes are `preamble`; with `together`, it goes out in one write with the ClientHello. */
    const viaTls = (preamble: string, together: boolean) =>
      new Promise<Seen>((resolve, reject) => {
        const raw = connect(port, '127.0.0.1')
        let first = true
        const pipe = new Duplex({
          write(chunk: Buffer, _encoding, done) {
            if (first && together) raw.write(Buffer.concat([Buffer.from(preamble), chunk]), done)
            else raw.write(chunk, done)
            first = false
          },
          read() {},
        })
        if (!together && preamble) raw.write(preamble)
        raw.on('data', (d: Buffer) => pipe.push(d))
        raw.on('end', () => pipe.push(null))
        raw.on('error', reject)
        const socket = tlsConnect({ socket: pipe, rejectUnauthorized: false, servername: 'localhost' })
        let out = ''
        socket.on('secureConnect', () => socket.write('GET /tls HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'))
        socket.on('data', (d: Buffer) => (out += d.toString()))
        socket.on('end', () => {
          raw.destroy()
          resolve(JSON.parse(out.slice(out.indexOf('{'), out.lastIndexOf('}') + 1)) as Seen)
        })
        socket.on('error', reject)
        setTimeout(() => reject(new Error('no answer over TLS')), 5000).unref()
      })

    const line = 'PROXY TCP4 198.51.100.4 10.0.0.1 40000 443\r\n'
    expect(await viaTls(line, true)).toMatchObject({
      remoteAddress: '198.51.100.4',
      remotePort: 40000,
      encrypted: true,
    })
    expect(await viaTls(line, false)).toMatchObject({
      remoteAddress: '198.51.100.4',
      remotePort: 40000,
      encrypted: true,
    })
    // No header: the ClientHello itself goes back to node:tls untouched.
    expect(await viaTls('', true)).toMatchObject({ remoteAddress: '127.0.0.1', encrypted: true })
    // A trusted peer's X-Forwarded-Proto: http does not make a TLS connection plain.
    const viaHttps = await new Promise<Seen>((resolve, reject) => {
      const req = httpsRequest(
        {
          host: '127.0.0.1',
          port,
          path: '/',
          rejectUnauthorized: false,
          agent: false,
          headers: { 'X-Forwarded-Proto': 'http' },
        },
        (res) => {
          let body = ''
          res.on('data', (c: Buffer) => (body += c.toString()))
          res.on('end', () => resolve(JSON.parse(body) as Seen))
        },
      )
      req.on('error', reject)
      req.end()
    })
    expect(viaHttps).toMatchObject({ remoteAddress: '127.0.0.1', encrypted: true })
    rmSync(dir, { recursive: true, force: true })
  })
})

describe('bad proxy settings', () => {
  const corral = (args: string[]) => {
    const r = spawnSync(process.execPath, [BIN, '-b', '127.0.0.1:0', ...args, fixture('proxy-echo.ts')], {
      cwd: ROOT,
      encoding: 'utf8',
      timeout: 15_000,
    })
    return { code: r.status, stderr: r.stderr }
  }
  it('each bad value is one line naming its setting, exit 2', () => {
    const r = corral([
      '--forwarded-allow-ips',
      '10.0.0.0/33',
      '--proxy-allow-from',
      'localhost',
      '--secure-scheme-headers',
      'X-Proto',
    ])
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/^corral: error: --forwarded-allow-ips: .*the prefix length must be 0 to 32$/m)
    expect(r.stderr).toMatch(
      /^corral: error: --proxy-allow-from\/--proxy-allow-ips: .*"localhost" is not an IP address/m,
    )
    expect(r.stderr).toMatch(/^corral: error: --secure-scheme-headers: .*expected NAME=VALUE$/m)
    expect(r.stderr).not.toMatch(/^\s+at /m)
  })

  it('FORWARDED_ALLOW_IPS is the default, as in gunicorn, and a bad one is named', () => {
    const r = spawnSync(process.execPath, [BIN, '--print-config', fixture('proxy-echo.ts')], {
      cwd: ROOT,
      encoding: 'utf8',
      env: { ...process.env, FORWARDED_ALLOW_IPS: '10.0.0.0/8' },
    })
    expect(r.stdout).toMatch(/forwardedAllowIps.*10\.0\.0\.0\/8/)
    const bad = spawnSync(process.execPath, [BIN, '--print-config', fixture('proxy-echo.ts')], {
      cwd: ROOT,
      encoding: 'utf8',
      env: { ...process.env, FORWARDED_ALLOW_IPS: 'nope' },
    })
    expect(bad.status).toBe(2)
    expect(bad.stderr).toMatch(/FORWARDED_ALLOW_IPS: .*"nope"/)
  })
})
