// Checks one framework's scratch app by hand, route by route, before the
// grid's battery runs it: `node compat/check-app.ts ID [--corral] [--h2]`.
// Installs the app under .cache/compat/check/ID (reused while its package set
// is unchanged), builds it, starts it (with plain `node` when it calls
// listen() itself, under this checkout's corral when it exports a handler or
// with --corral), and prints one line per route of the contract
// (compat/framework.ts). Exits 1 when a route fails.
import { type ChildProcess, execFile, execFileSync, spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { request as httpRequest } from 'node:http'
import { connect as http2Connect } from 'node:http2'
import { request as httpsRequest } from 'node:https'
import { createServer } from 'node:net'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { WebSocket } from 'ws'
import type { Framework } from './framework.ts'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const MiB = 1024 * 1024
const QUIET = {
  NEXT_TELEMETRY_DISABLED: '1',
  NUXT_TELEMETRY_DISABLED: '1',
  ASTRO_TELEMETRY_DISABLED: '1',
  DO_NOT_TRACK: '1',
  npm_config_update_notifier: 'false',
  npm_config_fund: 'false',
  npm_config_audit: 'false',
}

const [id, ...flags] = process.argv.slice(2)
if (!id) {
  process.stderr.write('usage: node compat/check-app.ts ID [--corral] [--h2]\n')
  process.exit(2)
}
const frameworksDir = fileURLToPath(new URL('frameworks/', import.meta.url))
if (!existsSync(join(frameworksDir, `${id}.ts`))) {
  const known = readdirSync(frameworksDir).filter((f) => f.endsWith('.ts'))
  process.stderr.write(`check-app: no framework "${id}"; one of: ${known.map((f) => f.slice(0, -3)).join(', ')}\n`)
  process.exit(2)
}
const framework = ((await import(join(frameworksDir, `${id}.ts`))) as { default: Framework }).default
const underCorral = flags.includes('--corral') || !framework.listensItself
const h2 = flags.includes('--h2')

function prepare(): string {
  const dir = join(ROOT, '.cache/compat/check', framework.id)
  const manifest = {
    name: `compat-${framework.id}`,
    private: true,
    type: 'module',
    dependencies: framework.dependencies,
    devDependencies: framework.devDependencies ?? {},
  }
  const packageSet = JSON.stringify(manifest)
  const stamp = join(dir, '.compat-packages')
  if (!existsSync(stamp) || readFileSync(stamp, 'utf8') !== packageSet) {
    rmSync(dir, { recursive: true, force: true })
    mkdirSync(dir, { recursive: true })
    writeFileSync(join(dir, 'package.json'), `${JSON.stringify(manifest, null, 2)}\n`)
    execFileSync('npm', ['install', '--no-audit', '--no-fund', '--loglevel=error'], {
      cwd: dir,
      stdio: 'inherit',
      env: { ...process.env, ...QUIET },
    })
    writeFileSync(stamp, packageSet)
  }
  for (const [path, content] of Object.entries(framework.files)) {
    mkdirSync(dirname(join(dir, path)), { recursive: true })
    writeFileSync(join(dir, path), content)
  }
  if (framework.build) {
    const [cmd, ...args] = framework.build
    execFileSync(cmd!, args, { cwd: dir, stdio: 'inherit', env: { ...process.env, ...QUIET, ...framework.env } })
  }
  return dir
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer().listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as { port: number }
      probe.close(() => resolve(port))
    })
    probe.on('error', reject)
  })
}

/** The TCP ports `pid` (or any process below it) listens on, from ss. */
function listeningPorts(pid: number): number[] {
  const out = execFileSync('ss', ['-Hltnp'], { encoding: 'utf8' })
  return out
    .split('\n')
    .filter((line) => line.includes(`pid=${pid},`))
    .map((line) => Number(line.split(/\s+/)[3]!.split(':').at(-1)))
}

async function start(dir: string): Promise<{ child: ChildProcess; base: string; output: () => string }> {
  const port = await freePort()
  const entry = framework.entry
  const certs = join(ROOT, '.cache/compat/check/certs')
  const tls = h2
    ? ['--certfile', join(certs, 'cert.pem'), '--keyfile', join(certs, 'key.pem'), '--http-protocols', 'h2,h1']
    : []
  if (h2 && !existsSync(join(certs, 'cert.pem'))) {
    mkdirSync(certs, { recursive: true })
    execFileSync('openssl', [
      ...['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2'],
      ...['-subj', '/CN=localhost', '-keyout', join(certs, 'key.pem'), '-out', join(certs, 'cert.pem')],
    ])
  }
  const argv = underCorral
    ? [
        join(ROOT, 'bin/corral.js'),
        ...['-w', '2', '-b', `127.0.0.1:${port}`, '--no-control-socket', '--graceful-timeout', '3'],
        ...tls,
        ...(framework.corralArgs ?? []),
        entry,
      ]
    : [entry.split(':')[0]!]
  const child = spawn(process.execPath, argv, {
    cwd: dir,
    env: { ...process.env, ...QUIET, ...framework.env, PORT: String(port) },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let output = ''
  child.stdout!.on('data', (c: Buffer) => (output += c))
  child.stderr!.on('data', (c: Buffer) => (output += c))
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  // Ready when something answers on the port (plain node: whichever port the
  // app chose, as ss shows it for the child's pid).
  const deadline = Date.now() + 60_000
  for (;;) {
    if (child.exitCode !== null) throw new Error(`the app exited (${child.exitCode}):\n${output}`)
    const ports = underCorral ? [port] : listeningPorts(child.pid!)
    const scheme = h2 ? 'https' : 'http'
    if (ports.length > 0) {
      const base = `${scheme}://127.0.0.1:${ports[0]}`
      const up = await fetch(`${base}/pid`).then(
        () => true,
        () => false,
      )
      if (up) return { child, base, output: () => output }
    }
    if (Date.now() > deadline) {
      child.kill('SIGTERM')
      throw new Error(`the app did not answer within 60 s:\n${output}`)
    }
    await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 250))])
  }
}

type Check = readonly [name: string, run: (base: string) => Promise<string | undefined>]

/**
 * A POST with node:http, Content-Length and no Content-Type (as a plain
 * client sends bytes); with `expectContinue`, the body waits for the 100.
 */
function post(url: string, body: Buffer, expectContinue = false): Promise<{ continued: boolean; body: string }> {
  return new Promise((resolve, reject) => {
    let continued = false
    const headers = { 'content-length': String(body.length), ...(expectContinue && { expect: '100-continue' }) }
    const send = url.startsWith('https:') ? httpsRequest : httpRequest
    const req = send(url, { method: 'POST', headers, rejectUnauthorized: false }, (res) => {
      let text = ''
      res.on('data', (c: Buffer) => (text += c))
      res.on('end', () => resolve({ continued, body: text }))
    })
    req.on('error', reject)
    if (!expectContinue) return void req.end(body)
    req.on('continue', () => {
      continued = true
      req.end(body)
    })
    req.flushHeaders()
  })
}

const sha256 = (data: Uint8Array) => createHash('sha256').update(data).digest('hex')
function expect(ok: boolean, what: string): void {
  if (!ok) throw new Error(what)
}

const checks: Check[] = [
  [
    'GET /',
    async (base) => {
      const res = await fetch(`${base}/`)
      const body = await res.text()
      expect(res.status === 200 && body.includes(`hello from ${framework.id}`), `${res.status} ${body.slice(0, 80)}`)
      return res.headers.get('content-type') ?? ''
    },
  ],
  [
    'GET /missing-page',
    async (base) => {
      const res = await fetch(`${base}/missing-page`)
      const body = await res.text()
      expect(res.status === 404, `${res.status}`)
      return body.slice(0, 40).replace(/\s+/g, ' ')
    },
  ],
  [
    'HEAD /',
    async (base) => {
      const res = await fetch(`${base}/`, { method: 'HEAD' })
      const body = await res.arrayBuffer()
      expect(res.status === 200 && body.byteLength === 0, `${res.status} ${body.byteLength} bytes`)
      return undefined
    },
  ],
  [
    'GET /big',
    async (base) => {
      const body = new Uint8Array(await (await fetch(`${base}/big`)).arrayBuffer())
      expect(body.length === 10 * MiB && body.every((b) => b === 0x78), `${body.length} bytes`)
      return undefined
    },
  ],
  [
    'GET /text (gzip)',
    async (base) => {
      const res = await fetch(`${base}/text`, { headers: { 'accept-encoding': 'gzip' } })
      const body = await res.text()
      const encoding = res.headers.get('content-encoding')
      expect(body.length >= 60 * 1024, `${body.length} chars`)
      if (framework.notApplicable?.['compression']) return `not compressed (n/a), ${encoding}`
      expect(encoding === 'gzip', `content-encoding ${encoding}`)
      return 'gzip'
    },
  ],
  [
    'POST /upload (chunked 10 MiB)',
    async (base) => {
      const data = new Uint8Array(10 * MiB).fill(0x61)
      const body = new ReadableStream({
        start(controller) {
          for (let i = 0; i < 10; i++) controller.enqueue(data.subarray(i * MiB, (i + 1) * MiB))
          controller.close()
        },
      })
      const res = await fetch(`${base}/upload`, { method: 'POST', body, duplex: 'half' } as RequestInit)
      const answer = (await res.json()) as { bytes: number; sha256: string }
      expect(answer.bytes === data.length && answer.sha256 === sha256(data), JSON.stringify(answer))
      return undefined
    },
  ],
  [
    'POST /upload (Content-Length, Expect: 100-continue)',
    async (base) => {
      const data = Buffer.alloc(10 * MiB, 'upload;')
      for (const expectContinue of [false, true]) {
        const res = await post(`${base}/upload`, data, expectContinue)
        const answer = JSON.parse(res.body) as { bytes: number; sha256: string }
        expect(answer.bytes === data.length && answer.sha256 === sha256(data), res.body)
        if (expectContinue) expect(res.continued, 'no 100 Continue')
      }
      return undefined
    },
  ],
  [
    'POST /multipart (curl -F, 1 MiB file)',
    async (base) => {
      const file = join(ROOT, '.cache/compat/check/multipart.bin')
      writeFileSync(file, Buffer.alloc(MiB, 'multipart file;'))
      const out = await new Promise<string>((resolve, reject) =>
        execFile(
          'curl',
          ['-sSk', '-F', 'greeting=hello corral', '-F', `file=@${file}`, `${base}/multipart`],
          (err, stdout) => (err ? reject(err) : resolve(stdout)),
        ),
      )
      const answer = JSON.parse(out) as { fields: Record<string, string>; files: Record<string, number> }
      expect(answer.fields?.['greeting'] === 'hello corral' && answer.files?.['file'] === MiB, out)
      return undefined
    },
  ],
  [
    'GET /text (identity)',
    async (base) => {
      const res = await fetch(`${base}/text`, { headers: { 'accept-encoding': 'identity' } })
      await res.arrayBuffer()
      expect(res.headers.get('content-encoding') === null, `content-encoding ${res.headers.get('content-encoding')}`)
      return undefined
    },
  ],
  [
    'POST /multipart',
    async (base) => {
      const form = new FormData()
      form.append('name', 'corral')
      form.append('file', new Blob([new Uint8Array(1000).fill(1)]), 'one.bin')
      const res = await fetch(`${base}/multipart`, { method: 'POST', body: form })
      const answer = (await res.json()) as { fields: Record<string, string>; files: Record<string, number> }
      expect(answer.fields['name'] === 'corral' && answer.files['file'] === 1000, JSON.stringify(answer))
      return undefined
    },
  ],
  [
    'GET /throw',
    async (base) => {
      const res = await fetch(`${base}/throw`)
      await res.arrayBuffer()
      expect(res.status >= 500, `${res.status}`)
      const after = await fetch(`${base}/pid`)
      expect(after.status === 200, `then /pid ${after.status}`)
      return String(res.status)
    },
  ],
  [
    'GET /slow?ms=300',
    async (base) => {
      const body = await (await fetch(`${base}/slow?ms=300`)).text()
      expect(body === 'slow done', body)
      return undefined
    },
  ],
  [
    'GET /pid',
    async (base) => {
      const body = await (await fetch(`${base}/pid`)).text()
      expect(/^\d+$/.test(body), body)
      return body
    },
  ],
  [
    'GET /whoami',
    async (base) => {
      const answer = (await (await fetch(`${base}/whoami`)).json()) as { ip: string; protocol: string; pid: number }
      expect(answer.ip.endsWith('127.0.0.1') && answer.protocol === base.split(':')[0], JSON.stringify(answer))
      return JSON.stringify(answer)
    },
  ],
  [
    'GET /sse',
    async (base) => {
      const controller = new AbortController()
      const res = await fetch(`${base}/sse`, { signal: controller.signal })
      expect(res.headers.get('content-type')?.startsWith('text/event-stream') === true, 'content-type')
      let seen = ''
      const reader = res.body!.getReader()
      while ((seen.match(/data: \d+\n\n/g) ?? []).length < 2) {
        const { value, done } = await reader.read()
        if (done) break
        seen += new TextDecoder().decode(value)
      }
      controller.abort()
      expect((seen.match(/data: \d+\n\n/g) ?? []).length >= 2, JSON.stringify(seen))
      return JSON.stringify(seen.split('\n\n')[0])
    },
  ],
  [
    'WS /ws',
    (base) =>
      new Promise((resolve, reject) => {
        const socket = new WebSocket(`${base.replace(/^http/, 'ws')}/ws`, { rejectUnauthorized: false })
        const got: string[] = []
        socket.on('open', () => socket.send('echo me'))
        socket.on('message', (data) => {
          got.push(String(data))
          if (got.length === 2) socket.close(1000)
        })
        socket.on('close', (code) => {
          if (/^\d+$/.test(got[0] ?? '') && got[1] === 'echo me') resolve(`${got.join(' | ')}, closed ${code}`)
          else reject(new Error(`got ${JSON.stringify(got)}, close ${code}`))
        })
        socket.on('error', reject)
      }),
  ],
]

/** A Socket.IO client on one transport: the `pid` event on connection, then an `echo` with its acknowledgement. */
function socketIo(transport: 'websocket' | 'polling'): Check {
  return [
    `Socket.IO over ${transport}`,
    async (base) => {
      // socket.io-client is installed in the scratch app (the framework's devDependencies).
      const client = join(ROOT, '.cache/compat/check/socketio/node_modules/socket.io-client/build/esm/index.js')
      type Socket = import('node:events').EventEmitter & {
        emitWithAck(event: string, data: unknown): Promise<unknown>
        disconnect(): void
      }
      const { io } = (await import(client)) as { io: (url: string, options: object) => Socket }
      const socket = io(base, { transports: [transport], reconnection: false, rejectUnauthorized: false })
      try {
        const pid = await new Promise((resolve, reject) => {
          socket.once('pid', resolve)
          socket.once('connect_error', reject)
        })
        const echoed = await socket.emitWithAck('echo', 'echo me')
        expect(echoed === 'echo me', String(echoed))
        return `pid ${pid}, echoed`
      } finally {
        socket.disconnect()
      }
    },
  ]
}

/** Each framework's own protocol, beside the contract's routes. */
const ownChecks: Record<string, Check[]> = {
  socketio: [socketIo('websocket'), socketIo('polling')],
  graphql: [
    [
      'POST /graphql',
      async (base) => {
        const res = await fetch(`${base}/graphql`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ query: '{ hello pid }' }),
        })
        const answer = (await res.json()) as { data?: { hello: string; pid: number } }
        expect(answer.data?.hello === 'hello from graphql', JSON.stringify(answer))
        return JSON.stringify(answer)
      },
    ],
    [
      'subscription over SSE',
      async (base) => {
        const res = await fetch(`${base}/graphql`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
          body: JSON.stringify({ query: 'subscription { ticks(count: 3) }' }),
        })
        const body = await res.text()
        const ticks = [...body.matchAll(/"ticks":(\d+)/g)].map((m) => m[1])
        expect(ticks.join() === '1,2,3', body)
        return `ticks ${ticks.join()}`
      },
    ],
  ],
}

/** One request over HTTP/2 (TLS, the check's own certificate): status, headers and the whole body. */
function h2Request(
  base: string,
  path: string,
  options: { method?: string; headers?: Record<string, string>; body?: Uint8Array } = {},
): Promise<{ status: number; headers: Record<string, unknown>; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const session = http2Connect(base, { rejectUnauthorized: false })
    session.on('error', reject)
    const stream = session.request({ ':path': path, ':method': options.method ?? 'GET', ...options.headers })
    const parts: Buffer[] = []
    let headers: Record<string, unknown> = {}
    stream.on('response', (h) => (headers = h))
    stream.on('data', (c: Buffer) => parts.push(c))
    stream.on('end', () => {
      session.close()
      resolve({ status: Number(headers[':status']), headers, body: Buffer.concat(parts) })
    })
    stream.on('error', reject)
    stream.end(options.body)
  })
}

const h2checks: Check[] = [
  [
    'h2 GET /',
    async (base) => {
      const res = await h2Request(base, '/')
      expect(res.status === 200 && String(res.body).includes(`hello from ${framework.id}`), `${res.status}`)
      return undefined
    },
  ],
  [
    'h2 GET /big',
    async (base) => {
      const res = await h2Request(base, '/big')
      expect(res.status === 200 && res.body.length === 10 * MiB, `${res.status} ${res.body.length} bytes`)
      return undefined
    },
  ],
  [
    'h2 GET /text (gzip)',
    async (base) => {
      const res = await h2Request(base, '/text', { headers: { 'accept-encoding': 'gzip' } })
      expect(res.status === 200, `${res.status}`)
      return String(res.headers['content-encoding'] ?? 'identity')
    },
  ],
  [
    'h2 POST /upload',
    async (base) => {
      const data = new Uint8Array(MiB).fill(0x62)
      const res = await h2Request(base, '/upload', { method: 'POST', body: data })
      const answer = JSON.parse(String(res.body)) as { bytes: number; sha256: string }
      expect(answer.bytes === data.length && answer.sha256 === sha256(data), String(res.body))
      return undefined
    },
  ],
  [
    'h2 GET /whoami',
    async (base) => {
      const res = await h2Request(base, '/whoami')
      const answer = JSON.parse(String(res.body)) as { protocol: string }
      expect(answer.protocol === 'https', String(res.body))
      return String(res.body)
    },
  ],
]

// The check's own self-signed certificate.
if (h2) process.env['NODE_TLS_REJECT_UNAUTHORIZED'] = '0'
// An install or build that fails, or an app that never answers, is one line.
const app = await Promise.resolve()
  .then(() => start(prepare()))
  .catch((err: Error) => {
    process.stderr.write(`check-app: ${framework.id}: ${err.message}\n`)
    process.exit(1)
  })
let failed = 0
process.stdout.write(`${framework.id} ${underCorral ? 'under corral' : 'with plain node'} at ${app.base}\n`)
for (const [name, run] of [...(h2 ? h2checks : []), ...checks, ...(ownChecks[framework.id] ?? [])]) {
  const note = framework.notApplicable?.[name]
  try {
    const result = await Promise.race([
      run(app.base),
      new Promise<never>((_, reject) => setTimeout(() => reject(new Error('no answer within 30 s')), 30_000).unref()),
    ])
    process.stdout.write(`  ok    ${name}${result ? `  ${result}` : ''}\n`)
  } catch (err) {
    failed += 1
    process.stdout.write(`  FAIL  ${name}: ${(err as Error).message}${note ? ` (n/a: ${note})` : ''}\n`)
  }
}
app.child.kill('SIGTERM')
await new Promise((resolve) => app.child.once('exit', resolve))
for (const note of framework.notes ?? []) process.stdout.write(`  note: ${note}\n`)
if (failed > 0 || flags.includes('--log')) process.stdout.write(`--- the app's output ---\n${app.output()}\n`)
process.exit(failed > 0 ? 1 : 0)
