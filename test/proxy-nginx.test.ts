// corral behind a real nginx (Debian's, started by the test with its own
// prefix in a temp dir, loopback and unix sockets only, one process, killed
// by pid): an HTTP reverse proxy to corral over TCP and over a unix socket,
// plain and TLS-terminating, adding X-Forwarded-For and X-Forwarded-Proto;
// and nginx's stream module sending the PROXY protocol, over TCP and a unix
// socket. The client connects from 127.0.0.2, so the address the app sees
// can only have come through the proxy; nginx reaches corral from 127.0.0.1,
// which corral trusts by default.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { request as httpRequest } from 'node:http'
import { request as httpsRequest } from 'node:https'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { fixture, freePort, killAll, startCorral, track, waitFor, type Corral } from './helpers/corral.ts'

const NGINX = ['/usr/sbin/nginx', '/usr/bin/nginx'].find((p) => existsSync(p))
const STREAM_MODULE = '/usr/lib/nginx/modules/ngx_stream_module.so'
const CLIENT = '127.0.0.2'

const dir = mkdtempSync(join(tmpdir(), 'corral-nginx-'))
let nginx: ChildProcess | undefined
let corral: Corral
const ports = { corral: 0, http: 0, https: 0, stream: 0, streamUnix: 0 }
const corralSock = join(dir, 'corral.sock')

function nginxConfig(): string {
  const proxied = (upstream: string) => `
      proxy_pass http://${upstream};
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $http_host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto $scheme;`
  return `
daemon off;
master_process off;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log info;
load_module ${STREAM_MODULE};
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path ${dir}/tmp/body;
  proxy_temp_path ${dir}/tmp/proxy;
  fastcgi_temp_path ${dir}/tmp/fastcgi;
  uwsgi_temp_path ${dir}/tmp/uwsgi;
  scgi_temp_path ${dir}/tmp/scgi;
  upstream corral_tcp { server 127.0.0.1:${ports.corral}; keepalive 4; }
  upstream corral_unix { server unix:${corralSock}; keepalive 4; }
  server {
    listen 127.0.0.1:${ports.http};
    listen 127.0.0.1:${ports.https} ssl;
    ssl_certificate ${dir}/cert.pem;
    ssl_certificate_key ${dir}/key.pem;
    location /tcp/ {${proxied('corral_tcp')}
    }
    location /unix/ {${proxied('corral_unix')}
    }
  }
}
stream {
  server { listen 127.0.0.1:${ports.stream}; proxy_pass 127.0.0.1:${ports.corral}; proxy_protocol on; }
  server { listen 127.0.0.1:${ports.streamUnix}; proxy_pass unix:${corralSock}; proxy_protocol on; }
}
`
}

function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1')
    s.on('connect', () => {
      s.destroy()
      resolve(true)
    })
    s.on('error', () => resolve(false))
  })
}

beforeAll(async () => {
  if (!NGINX) throw new Error('nginx is not installed: apt-get install nginx-light libnginx-mod-stream (.ci/run does)')
  if (!existsSync(STREAM_MODULE))
    throw new Error(`${STREAM_MODULE} is missing: apt-get install libnginx-mod-stream (.ci/run does)`)
  for (const k of Object.keys(ports) as (keyof typeof ports)[]) ports[k] = await freePort()
  mkdirSync(join(dir, 'tmp'))
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-days',
      '1',
      '-subj',
      '/CN=localhost',
      '-keyout',
      `${dir}/key.pem`,
      '-out',
      `${dir}/cert.pem`,
    ],
    { stdio: 'ignore' },
  )
  writeFileSync(`${dir}/nginx.conf`, nginxConfig())
  nginx = spawn(NGINX, ['-p', dir, '-e', `${dir}/error.log`, '-c', `${dir}/nginx.conf`], {
    stdio: ['ignore', 'ignore', 'pipe'],
  })
  let stderr = ''
  nginx.stderr!.on('data', (c: Buffer) => (stderr += c.toString()))
  const deadline = Date.now() + 10_000
  while (!(await listening(ports.http)) || !(await listening(ports.stream))) {
    if (nginx.exitCode !== null || Date.now() > deadline)
      throw new Error(`nginx did not start: ${stderr}${readFileSync(`${dir}/error.log`, 'utf8')}`)
    await new Promise((r) => setTimeout(r, 50))
  }
  // One corral for all of it: TCP and unix listeners; --proxy-protocol's auto
  // mode also serves nginx's HTTP proxying, which sends no PROXY header.
  corral = startCorral([
    '-w',
    '2',
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
  await corral.waitForLog(/Ready: 2 worker/)
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
  for (const upstream of ['tcp', 'unix'] as const) {
    it(`over ${upstream}: the app sees the client's address, and https when nginx terminated TLS`, async () => {
      const plain = await get('http', ports.http, `/${upstream}/plain?x=1`)
      expect(plain).toEqual({
        url: `http://example.test:${ports.http}/${upstream}/plain?x=1`,
        remoteAddress: CLIENT,
        forwardedFor: CLIENT,
        forwardedProto: 'http',
      })

      const tls = await get('https', ports.https, `/${upstream}/tls`)
      expect(tls).toEqual({
        url: `https://example.test:${ports.https}/${upstream}/tls`,
        remoteAddress: CLIENT,
        forwardedFor: CLIENT,
        forwardedProto: 'https',
      })

      // What the client claims itself is kept in the header, but the address is the one nginx saw.
      const spoofing = await get('https', ports.https, `/${upstream}/spoof`, { 'X-Forwarded-For': '6.6.6.6' })
      expect(spoofing).toMatchObject({ remoteAddress: CLIENT, forwardedFor: `6.6.6.6, ${CLIENT}` })
      // ... and claiming https over plain HTTP does not work: nginx sets X-Forwarded-Proto itself.
      const claim = await get('http', ports.http, `/${upstream}/claim`, { 'X-Forwarded-Proto': 'https' })
      expect(claim.url).toMatch(/^http:/)

      await waitFor(() => corral.log().includes(`h=${CLIENT} /${upstream}/claim 200`), { what: 'access log lines' })
      for (const path of ['plain', 'tls', 'spoof', 'claim'])
        expect(corral.log()).toContain(`h=${CLIENT} /${upstream}/${path} 200\n`)
    })
  }
})

describe("behind nginx's stream module sending the PROXY protocol", () => {
  for (const [upstream, port] of [
    ['tcp', () => ports.stream],
    ['unix', () => ports.streamUnix],
  ] as const) {
    it(`over ${upstream}: the app sees the client's address`, async () => {
      const seen = await get('http', port(), `/pp-${upstream}`)
      expect(seen).toEqual({
        url: `http://example.test:${port()}/pp-${upstream}`,
        remoteAddress: CLIENT,
        forwardedFor: null,
        forwardedProto: null,
      })
      await waitFor(() => corral.log().includes(`h=${CLIENT} /pp-${upstream} 200\n`), { what: 'the access log line' })
    })
  }
})
