// corral behind a real nginx (Debian's, started by the test with its own
// prefix in a temp dir, loopback and unix sockets only, one process, killed
// by pid), configured with the example files users copy: deploy/nginx/corral.conf
// (an HTTP reverse proxy terminating TLS, adding X-Forwarded-For and
// X-Forwarded-Proto, keep-alive upstream) over corral's unix socket as
// shipped and over TCP, and deploy/nginx/corral-stream.conf (the stream
// module sending the PROXY protocol), over both too. Only addresses, ports
// and paths are substituted, and a substitution that no longer matches fails
// the test: the examples are what is tested. The client connects from
// 127.0.0.2, so the address the app sees can only have come through the
// proxy; nginx reaches corral from 127.0.0.1, which corral trusts by default.
import type { ChildProcess } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { request as httpRequest } from 'node:http'
import { request as httpsRequest } from 'node:https'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { ROOT, fixture, freePort, killAll, startCorral, track, waitFor, type Corral } from './helpers/corral.ts'
import { selfSignedCert } from './helpers/tls-certs.ts'
import { NGINX, startNginx } from './helpers/nginx.ts'

const STREAM_MODULE = '/usr/lib/nginx/modules/ngx_stream_module.so'
const CLIENT = '127.0.0.2'
const EXAMPLE_HTTP = `${ROOT}deploy/nginx/corral.conf`
const EXAMPLE_STREAM = `${ROOT}deploy/nginx/corral-stream.conf`
/** The unix socket the examples name (deploy/systemd/corral.socket's). */
const EXAMPLE_SOCKET = 'unix:/run/corral.sock'

const dir = mkdtempSync(join(tmpdir(), 'corral-nginx-'))
let nginx: ChildProcess | undefined
let corral: Corral
const UPSTREAMS = ['tcp', 'unix'] as const
type Upstream = (typeof UPSTREAMS)[number]
const ports = {
  corral: 0,
  http: { tcp: 0, unix: 0 },
  https: { tcp: 0, unix: 0 },
  stream: { tcp: 0, unix: 0 },
}
const corralSock = join(dir, 'corral.sock')

/** Replaces each `from` once; throws when the example no longer contains one. */
function substitute(text: string, file: string, pairs: [string, string][]): string {
  for (const [from, to] of pairs) {
    if (!text.includes(from)) throw new Error(`${file} no longer contains ${JSON.stringify(from)}: update this test`)
    text = text.replaceAll(from, to)
  }
  return text
}

const upstreamServer = (upstream: Upstream) =>
  upstream === 'unix' ? `unix:${corralSock}` : `127.0.0.1:${ports.corral}`

/** deploy/nginx/corral.conf, listening on loopback ports and proxying to this test's corral. */
function httpExample(upstream: Upstream): string {
  return substitute(readFileSync(EXAMPLE_HTTP, 'utf8'), EXAMPLE_HTTP, [
    ['upstream corral {', `upstream corral_${upstream} {`],
    ['proxy_pass http://corral;', `proxy_pass http://corral_${upstream};`],
    [`server ${EXAMPLE_SOCKET};`, `server ${upstreamServer(upstream)};`],
    ['listen 80;', `listen 127.0.0.1:${ports.http[upstream]};`],
    ['listen 443 ssl;', `listen 127.0.0.1:${ports.https[upstream]} ssl;`],
    ['/etc/ssl/certs/example.com.pem', `${dir}/cert.pem`],
    ['/etc/ssl/private/example.com.key', `${dir}/key.pem`],
  ])
}

/** The inside of deploy/nginx/corral-stream.conf's stream {}, likewise. */
function streamExample(upstream: Upstream): string {
  const text = substitute(readFileSync(EXAMPLE_STREAM, 'utf8'), EXAMPLE_STREAM, [
    ['upstream corral_pp {', `upstream corral_pp_${upstream} {`],
    ['proxy_pass corral_pp;', `proxy_pass corral_pp_${upstream};`],
    [`server ${EXAMPLE_SOCKET};`, `server ${upstreamServer(upstream)};`],
    ['listen 8443;', `listen 127.0.0.1:${ports.stream[upstream]};`],
  ])
  const inside = /^stream \{\n([\s\S]*)\n\}\s*$/m.exec(text)
  if (!inside) throw new Error(`${EXAMPLE_STREAM}: expected one stream { } block`)
  return inside[1]!
}

beforeAll(async () => {
  if (!NGINX) throw new Error('nginx is not installed: apt-get install nginx-light libnginx-mod-stream (.ci/run does)')
  if (!existsSync(STREAM_MODULE))
    throw new Error(`${STREAM_MODULE} is missing: apt-get install libnginx-mod-stream (.ci/run does)`)
  ports.corral = await freePort()
  for (const upstream of UPSTREAMS)
    for (const kind of ['http', 'https', 'stream'] as const) ports[kind][upstream] = await freePort()
  selfSignedCert(dir)
  // The test's own main context (a prefix of its own, one process, no daemon), with the examples inside.
  nginx = await startNginx(
    dir,
    {
      errorLevel: 'info',
      workerConnections: 64,
      modules: [STREAM_MODULE],
      http: UPSTREAMS.map(httpExample).join('\n'),
      stream: UPSTREAMS.map(streamExample).join('\n'),
    },
    [ports.http.unix, ports.stream.unix],
  )
  // One corral for all of it: TCP and unix listeners; --proxy-protocol's auto
  // mode also serves nginx's HTTP proxying, which sends no PROXY header.
  // --keep-alive 5 as in deploy/systemd/corral.service: above the example's
  // upstream keepalive_timeout.
  corral = startCorral([
    '-w',
    '2',
    '--keep-alive',
    '5',
    '-b',
    `127.0.0.1:${ports.corral}`,
    '-b',
    `unix:${corralSock}`,
    '--proxy-protocol',
    '--access-logfile',
    '-',
    '--access-logformat',
    'h=%(h)s %(U)s %(s)s',
    fixture('proxy-fetch.ts'),
  ])
  await corral.untilReady()
})

afterAll(async () => {
  if (nginx?.pid) track(nginx.pid)
  await killAll()
  rmSync(dir, { recursive: true, force: true })
})
afterEach(() => {
  // Everything here is shared by the tests of this file: only check nothing died.
  expect(corral.child.exitCode).toBeNull()
  expect(nginx?.exitCode).toBeNull()
})

interface Seen {
  url: string
  remoteAddress: string | null
  forwardedFor: string | null
  forwardedProto: string | null
}

function get(
  scheme: 'http' | 'https',
  port: number,
  path: string,
  headers: Record<string, string> = {},
): Promise<Seen> {
  const request = scheme === 'https' ? httpsRequest : httpRequest
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path,
        headers: { host: `example.test:${port}`, ...headers },
        localAddress: CLIENT,
        agent: false,
        rejectUnauthorized: false,
      },
      (res) => {
        let body = ''
        res.setEncoding('utf8')
        res.on('data', (c: string) => (body += c))
        res.on('end', () =>
          res.statusCode === 200 ? resolve(JSON.parse(body) as Seen) : reject(new Error(`${res.statusCode}: ${body}`)),
        )
      },
    )
    req.on('error', reject)
    req.end()
  })
}

describe('behind nginx as an HTTP reverse proxy', () => {
  for (const upstream of UPSTREAMS) {
    it(`over ${upstream}: the app sees the client's address, and https when nginx terminated TLS`, async () => {
      const plain = await get('http', ports.http[upstream], `/${upstream}/plain?x=1`)
      expect(plain).toEqual({
        url: `http://example.test:${ports.http[upstream]}/${upstream}/plain?x=1`,
        remoteAddress: CLIENT,
        forwardedFor: CLIENT,
        forwardedProto: 'http',
      })

      const tls = await get('https', ports.https[upstream], `/${upstream}/tls`)
      expect(tls).toEqual({
        url: `https://example.test:${ports.https[upstream]}/${upstream}/tls`,
        remoteAddress: CLIENT,
        forwardedFor: CLIENT,
        forwardedProto: 'https',
      })

      // What the client claims itself is kept in the header, but the address is the one nginx saw.
      const spoofing = await get('https', ports.https[upstream], `/${upstream}/spoof`, { 'X-Forwarded-For': '6.6.6.6' })
      expect(spoofing).toMatchObject({ remoteAddress: CLIENT, forwardedFor: `6.6.6.6, ${CLIENT}` })
      // ... and claiming https over plain HTTP does not work: nginx sets X-Forwarded-Proto itself.
      const claim = await get('http', ports.http[upstream], `/${upstream}/claim`, { 'X-Forwarded-Proto': 'https' })
      expect(claim.url).toMatch(/^http:/)

      await waitFor(() => corral.log().includes(`h=${CLIENT} /${upstream}/claim 200`), { what: 'access log lines' })
      for (const path of ['plain', 'tls', 'spoof', 'claim'])
        expect(corral.log()).toContain(`h=${CLIENT} /${upstream}/${path} 200\n`)
    })
  }
})

describe("behind nginx's stream module sending the PROXY protocol", () => {
  for (const upstream of UPSTREAMS) {
    it(`over ${upstream}: the app sees the client's address`, async () => {
      const seen = await get('http', ports.stream[upstream], `/pp-${upstream}`)
      expect(seen).toEqual({
        url: `http://example.test:${ports.stream[upstream]}/pp-${upstream}`,
        remoteAddress: CLIENT,
        forwardedFor: null,
        forwardedProto: null,
      })
      await waitFor(() => corral.log().includes(`h=${CLIENT} /pp-${upstream} 200\n`), { what: 'the access log line' })
    })
  }
})
