// Runs the battery against one framework: its scratch app under corral from
// the packed tarball, in three corrals (the main one, ended by the TERM
// cases; one recycling workers with --max-requests; one serving TLS), each
// waited for through its control socket, never by its log's wording.
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { Agent, request } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { gunzipSync } from 'node:zlib'
import { EventSource } from 'eventsource'
import WebSocket from 'ws'
import type { MachineSummary, WorkerRow } from '../../src/protocol/control.ts'
import { ask } from '../../test/helpers/control.ts'
import { freePort, killAll, startCorral, waitFor, type Corral } from '../../test/helpers/corral.ts'
import { startLoad } from '../../test/helpers/load.ts'
import { NGINX, startNginx } from '../../test/helpers/nginx.ts'
import type { Certs } from '../../test/helpers/tls-certs.ts'
import type { Framework } from '../framework.ts'
import { CASES, casesNamed, H2_CASES, type CaseId } from './cases.ts'
import { abortAfter, curlMultipart, expectContinue, h2, http, MiB, sha256, tenMiB } from './clients.ts'
import { prepareApp, QUIET_ENV, type ScratchApp } from './scratch.ts'

export type Outcome = { readonly result: 'pass' } | { readonly result: 'fail' | 'na'; readonly why: string }

export interface Column {
  readonly framework: Framework
  /** The installed version of its `versionOf` package ('' when the app could not be installed). */
  readonly version: string
  readonly outcomes: ReadonlyMap<CaseId, Outcome>
  readonly seconds: number
}

/** Seconds a draining worker has: the SSE and WebSocket cases wait it out, so it is short. */
const GRACEFUL_TIMEOUT = 4
/** Anything a case waits for that has not come by then will not come. */
const SCENARIO_MS = 90_000

class Recorder {
  readonly outcomes = new Map<CaseId, Outcome>()
  readonly log: (line: string) => void
  constructor(log: (line: string) => void) {
    this.log = log
  }
  pending(id: CaseId): boolean {
    return !this.outcomes.has(id)
  }
  private lastWhy = ''
  record(id: CaseId, outcome: Outcome): void {
    if (!this.pending(id)) return
    this.outcomes.set(id, outcome)
    const why = 'why' in outcome ? outcome.why : ''
    // A corral that did not start fails a run of cases for one reason: said once.
    if (why !== '' && why === this.lastWhy)
      return this.log(`  ${outcome.result === 'fail' ? '✘' : '–'} ${id}: (the same)`)
    this.lastWhy = why
    this.log(
      `  ${outcome.result === 'pass' ? '✔' : outcome.result === 'fail' ? '✘' : '–'} ${id}${'why' in outcome ? `: ${outcome.why}` : ''}`,
    )
  }
  pass(id: CaseId): void {
    this.record(id, { result: 'pass' })
  }
  fail(id: CaseId, why: string): void {
    this.record(id, { result: 'fail', why: oneLine(why) })
  }
  /** Runs `check` for the case unless it is decided already: it passes unless it throws. */
  async check(id: CaseId, check: () => Promise<void>): Promise<void> {
    if (!this.pending(id)) return
    try {
      await withTimeout(check(), SCENARIO_MS, id)
      this.pass(id)
    } catch (e) {
      this.fail(id, (e as Error).message)
    }
  }
  /** Runs a scenario deciding several cases; whatever it leaves undecided fails with its error. */
  async scenario(ids: readonly CaseId[], run: () => Promise<void>): Promise<void> {
    if (!ids.some((id) => this.pending(id))) return
    try {
      await withTimeout(run(), SCENARIO_MS, ids.join(', '))
    } catch (e) {
      for (const id of ids) this.fail(id, (e as Error).message)
    }
    for (const id of ids) this.fail(id, 'the scenario ended without deciding it')
  }
}

const oneLine = (text: string) => text.replace(/\s+/g, ' ').trim().slice(0, 300)

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: nothing after ${ms / 1000} s`)), ms)
  })
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer))
}

function expect(ok: boolean, why: string): asserts ok {
  if (!ok) throw new Error(why)
}

/** An address as the framework reports it, without the IPv4-mapped prefix. */
const plainIp = (ip: unknown) => String(ip).replace(/^::ffff:/, '')

interface Served {
  readonly corral: Corral
  readonly port: number
  readonly origin: string
  readonly control: string
  show(): Promise<{
    machine: MachineSummary
    workers: readonly WorkerRow[]
    restarts: Record<string, number>
    inFlight: number
  }>
}

/** Starts corral on the app with 2 workers on a free loopback port; resolves once the control socket says all are running. */
async function serve(framework: Framework, app: ScratchApp, args: readonly string[], scheme = 'http'): Promise<Served> {
  const port = await freePort()
  const dir = mkdtempSync(join(tmpdir(), 'corral-compat-'))
  const control = join(dir, 'corral.ctl')
  const corral = startCorral(
    [
      '--control-socket',
      control,
      '-b',
      `127.0.0.1:${port}`,
      '-w',
      '2',
      '--graceful-timeout',
      String(GRACEFUL_TIMEOUT),
      ...(framework.corralArgs ?? []),
      ...args,
      framework.entry,
    ],
    { cwd: app.dir, bin: join(app.dir, 'node_modules/corral/bin/corral.js'), env: { ...QUIET_ENV, ...framework.env } },
  )
  void corral.exited.then(() => rmSync(dir, { recursive: true, force: true }))
  const show = async () => {
    const r = await ask(control, ['show', 'all'])
    if (!r.ok || r.data.kind !== 'all') throw new Error(`show all: ${r.ok ? r.data.kind : r.error}`)
    return {
      machine: r.data.machine,
      workers: r.data.workers,
      restarts: { ...r.data.stats.restarts },
      inFlight: r.data.stats.requestsInFlight,
    }
  }
  const served: Served = { corral, port, origin: `${scheme}://127.0.0.1:${port}`, control, show }
  await waitFor(
    async () => {
      if (corral.child.exitCode !== null) throw new Error(`corral exited: ${tail(corral)}`)
      const state = await show().catch(() => undefined)
      return state?.machine.ready && running(state.workers, state.machine.generation).length === 2
    },
    { timeoutMs: 60_000, what: `corral serving ${framework.id} ready (log: ${tail(corral)})` },
  )
  return served
}

const tail = (corral: Corral) => oneLine(corral.log().split('\n').slice(-8).join(' | '))
const running = (workers: readonly WorkerRow[], generation: number) =>
  workers.filter((w) => w.state === 'running' && w.generation === generation && w.pid !== null)

/** The TCP sockets in LISTEN state held by these processes, as ss prints their local address. */
function listenersOf(pids: readonly number[]): string[] {
  const out = execFileSync('ss', ['-Hltnp']).toString()
  return out
    .split('\n')
    .filter((line) => [...line.matchAll(/pid=(\d+)/g)].some((m) => pids.includes(Number(m[1]))))
    .map((line) => line.trim().split(/\s+/)[3]!)
}

export async function runFramework(
  framework: Framework,
  tarball: string,
  certs: Certs,
  log: (line: string) => void,
): Promise<Column> {
  const started = Date.now()
  const r = new Recorder(log)
  for (const [key, why] of Object.entries(framework.notApplicable ?? {})) {
    const ids = casesNamed(key)
    if (ids.length === 0) throw new Error(`${framework.id}: notApplicable names no case or group: ${key}`)
    for (const id of ids) r.record(id, { result: 'na', why })
  }
  if (!framework.h2) {
    for (const id of H2_CASES) r.record(id, { result: 'na', why: "does not run on Node's http2 compatibility API" })
  }
  let app: ScratchApp
  try {
    app = prepareApp(framework, tarball)
    log(`  ${framework.versionOf}@${app.version} in ${app.dir}${app.installed ? ' (installed)' : ' (reused)'}`)
  } catch (e) {
    for (const c of CASES) r.fail(c.id, `the scratch app could not be made: ${(e as Error).message}`)
    return { framework, version: '', outcomes: r.outcomes, seconds: (Date.now() - started) / 1000 }
  }
  const dir = mkdtempSync(join(tmpdir(), 'corral-compat-nginx-'))
  try {
    await mainCorral(framework, app, certs, dir, r)
    await killAll()
    await recyclingCorral(framework, app, r)
    await killAll()
    await tlsCorral(framework, app, certs, r)
  } finally {
    await killAll()
    rmSync(dir, { recursive: true, force: true })
  }
  for (const c of CASES) r.fail(c.id, 'not run')
  return { framework, version: app.version, outcomes: r.outcomes, seconds: (Date.now() - started) / 1000 }
}

const MAIN_CASES = CASES.map((c) => c.id).filter(
  (id) => !['recycle-zero-failed', 'https-scheme', ...H2_CASES].includes(id),
)

async function mainCorral(framework: Framework, app: ScratchApp, certs: Certs, dir: string, r: Recorder) {
  let s: Served
  try {
    s = await serve(framework, app, ['--forwarded-allow-ips', '127.0.0.1'])
  } catch (e) {
    for (const id of MAIN_CASES) r.fail(id, `corral did not serve the app: ${(e as Error).message}`)
    return
  }
  const { origin } = s
  const pids = async () => (await s.show()).workers.map((w) => w.pid).sort()

  await r.check('page', async () => {
    const a = await http(`${origin}/`)
    expect(a.status === 200, `status ${a.status}`)
    expect(a.body.toString().includes(`hello from ${framework.id}`), `body ${a.body.toString().slice(0, 80)}`)
  })
  await r.check('not-found', async () => {
    const a = await http(`${origin}/missing-page`)
    expect(a.status === 404, `status ${a.status}`)
  })
  await r.check('head', async () => {
    const get = await http(`${origin}/`)
    const head = await http(`${origin}/`, { method: 'HEAD' })
    expect(head.status === 200, `status ${head.status}`)
    expect(head.body.length === 0, `a body of ${head.body.length} bytes`)
    const length = head.headers['content-length']
    expect(
      length === undefined || Number(length) === get.body.length,
      `Content-Length ${length}, GET's body has ${get.body.length}`,
    )
  })
  await r.check('keep-alive', async () => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 })
    try {
      await http(`${origin}/pid`, { agent })
      const second = await http(`${origin}/pid`, { agent })
      expect(second.status === 200, `status ${second.status}`)
      expect(second.reusedSocket, 'the second request went over a new connection')
    } finally {
      agent.destroy()
    }
  })
  await r.check('both-workers', async () => {
    const workers = await pids()
    const seen = new Set<number>()
    for (let i = 0; i < 60 && seen.size < workers.length; i++) {
      seen.add(Number((await http(`${origin}/pid`, { agent: false })).body.toString()))
    }
    expect(
      workers.every((p) => seen.has(p!)),
      `answered by ${[...seen].join(', ')}; workers ${workers.join(', ')}`,
    )
  })
  await r.check('only-corral-bind', async () => {
    const bound = listenersOf([s.corral.pid, ...(await pids()).map(Number)])
    const others = bound.filter((a) => a !== `127.0.0.1:${s.port}`)
    expect(others.length === 0, `also listening on ${others.join(', ')}`)
  })
  await r.check('big-download', async () => {
    const a = await http(`${origin}/big`)
    expect(a.status === 200, `status ${a.status}`)
    expect(a.body.length === 10 * MiB, `${a.body.length} bytes`)
  })
  const upload = tenMiB()
  const uploaded = (a: { status: number; body: Buffer }) => {
    // 2xx: NestJS answers a POST with 201 by default.
    expect(a.status >= 200 && a.status < 300, `status ${a.status}: ${a.body.toString().slice(0, 120)}`)
    const got = JSON.parse(a.body.toString()) as { bytes: number; sha256: string }
    expect(
      got.bytes === 10 * MiB && got.sha256 === sha256(upload),
      `the app got ${got.bytes} bytes, hash ${got.sha256}`,
    )
  }
  await r.check('upload-length', async () =>
    uploaded(await http(`${origin}/upload`, { method: 'POST', body: Buffer.concat(upload) })),
  )
  await r.check('upload-chunked', async () =>
    uploaded(await http(`${origin}/upload`, { method: 'POST', body: upload })),
  )
  await r.check('multipart', async () => {
    const file = join(dir, 'upload.bin')
    writeFileSync(file, Buffer.alloc(MiB, 'multipart file;'))
    const answer = JSON.parse(
      await curlMultipart(`${origin}/multipart`, ['greeting', 'hello corral'], ['file', file]),
    ) as {
      fields: Record<string, string>
      files: Record<string, number>
    }
    expect(answer.fields?.greeting === 'hello corral', `fields ${JSON.stringify(answer.fields)}`)
    expect(answer.files?.file === MiB, `files ${JSON.stringify(answer.files)}`)
  })
  await r.check('expect-continue', async () => {
    const { continued, answer } = await expectContinue(`${origin}/upload`, Buffer.concat(upload))
    expect(continued, 'no 100 Continue before the body')
    uploaded(answer)
  })
  await r.check('compression', async () => {
    const plain = await http(`${origin}/text`)
    const a = await http(`${origin}/text`, { headers: { 'accept-encoding': 'gzip' } })
    expect(a.headers['content-encoding'] === 'gzip', `Content-Encoding ${a.headers['content-encoding']}`)
    expect(gunzipSync(a.body).equals(plain.body), 'the gunzipped body differs from the plain one')
  })
  await r.check('no-compression-unasked', async () => {
    const a = await http(`${origin}/text`, { headers: { 'accept-encoding': 'identity' } })
    expect(a.status === 200, `status ${a.status}`)
    expect(a.headers['content-encoding'] === undefined, `Content-Encoding ${a.headers['content-encoding']}`)
    expect(a.body.length > 16 * 1024, `${a.body.length} bytes`)
  })
  const steady = async (before: readonly (number | null)[], what: string) => {
    const state = await s.show()
    const now = state.workers.map((w) => w.pid).sort()
    expect(
      JSON.stringify(now) === JSON.stringify(before),
      `workers ${before.join(', ')} became ${now.join(', ')} after ${what}`,
    )
    expect(state.restarts.crash === 0, `${state.restarts.crash} worker crashes`)
    const a = await http(`${origin}/`, { agent: false })
    expect(a.status === 200, `then GET / answered ${a.status}`)
  }
  await r.check('client-abort', async () => {
    const before = await pids()
    for (let i = 0; i < 4; i++) await abortAfter(`${origin}/big`, 256 * 1024)
    await steady(before, 'four aborted downloads')
  })
  const beforeThrow = await pids()
  await r.check('throw-500', async () => {
    const a = await http(`${origin}/throw`)
    expect(a.status === 500, `status ${a.status}`)
  })
  await r.check('throw-keeps-serving', async () => {
    for (let i = 0; i < 3; i++) await http(`${origin}/throw`, { agent: false })
    await steady(beforeThrow, 'four throwing handlers')
  })
  await r.check('whoami-direct', async () => {
    const who = JSON.parse((await http(`${origin}/whoami`)).body.toString()) as { ip: string; protocol: string }
    expect(plainIp(who.ip) === '127.0.0.1' && who.protocol === 'http', `saw ${JSON.stringify(who)}`)
  })
  await r.check('forged-forwarded', async () => {
    const a = await http(`${origin}/whoami`, {
      localAddress: '127.0.0.2',
      headers: { 'x-forwarded-for': '203.0.113.9', 'x-forwarded-proto': 'https' },
    })
    const who = JSON.parse(a.body.toString()) as { ip: string; protocol: string }
    expect(plainIp(who.ip) === '127.0.0.2' && who.protocol === 'http', `saw ${JSON.stringify(who)}`)
  })
  await proxyCases(s, certs, dir, r)
  await r.check('sse-first-event', async () => {
    const first = await new Promise<{ type: string; data: string }>((resolve, reject) => {
      const es = new EventSource(`${origin}/sse`, {
        fetch: async (input, init) => {
          const res = await fetch(input, init)
          type = res.headers.get('content-type') ?? ''
          return res
        },
      })
      let type = ''
      es.onmessage = (e) => {
        es.close()
        resolve({ type, data: e.data })
      }
      es.onerror = () => {
        es.close()
        reject(new Error('the EventSource failed'))
      }
    })
    expect(first.type.startsWith('text/event-stream'), `Content-Type ${first.type}`)
    expect((await pids()).includes(Number(first.data)), `the event said ${first.data}, not a worker pid`)
  })
  await r.check('sse-flow', async () => {
    const events = await new Promise<string[]>((resolve, reject) => {
      const es = new EventSource(`${origin}/sse`)
      const got: string[] = []
      es.onmessage = (e) => {
        got.push(e.data)
        if (got.length === 4) {
          es.close()
          resolve(got)
        }
      }
      es.onerror = () => {
        es.close()
        reject(new Error(`the EventSource failed after ${got.length} events`))
      }
    })
    expect(new Set(events).size === 1, `events from several pids: ${events.join(', ')}`)
  })
  await r.check('ws-echo', async () => {
    const ws = new WebSocket(`ws://127.0.0.1:${s.port}/ws`)
    try {
      const messages: string[] = []
      await new Promise<void>((resolve, reject) => {
        ws.on('message', (m) => {
          messages.push(m.toString())
          if (messages.length === 1) ws.send('echo me')
          else resolve()
        })
        ws.on('error', reject)
        ws.on('close', (code) => reject(new Error(`closed with ${code} after ${messages.length} messages`)))
      })
      expect((await pids()).includes(Number(messages[0])), `the first message was ${messages[0]}, not a worker pid`)
      expect(messages[1] === 'echo me', `echoed ${messages[1]}`)
    } finally {
      ws.terminate()
    }
  })
  await hupScenario(s, r)
  await termScenario(s, r)
}

/** nginx in front: plain HTTP and TLS terminated by nginx, each adding X-Forwarded-For and -Proto. */
async function proxyCases(s: Served, certs: Certs, dir: string, r: Recorder) {
  const ids = ['proxy-client-ip', 'proxy-scheme'] as const
  if (!NGINX) {
    for (const id of ids) r.fail(id, 'nginx is not installed (apt-get install nginx-light)')
    return
  }
  const [plain, tls] = [await freePort(), await freePort()]
  const location = `location / {
      proxy_pass http://127.0.0.1:${s.port};
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto $scheme;
    }`
  await r.scenario(ids, async () => {
    await startNginx(
      dir,
      {
        http: `server { listen 127.0.0.1:${plain}; ${location} }
  server { listen 127.0.0.1:${tls} ssl; ssl_certificate ${certs.serverCert}; ssl_certificate_key ${certs.serverKey}; ${location} }`,
        workerConnections: 64,
        errorLevel: 'warn',
      },
      [plain, tls],
    )
    const ca = readFileSync(certs.ca, 'utf8')
    await r.check('proxy-client-ip', async () => {
      const a = await http(`http://127.0.0.1:${plain}/whoami`, { localAddress: '127.0.0.2' })
      const who = JSON.parse(a.body.toString()) as { ip: string; protocol: string }
      expect(plainIp(who.ip) === '127.0.0.2' && who.protocol === 'http', `saw ${JSON.stringify(who)}`)
    })
    await r.check('proxy-scheme', async () => {
      const a = await http(`https://127.0.0.1:${tls}/whoami`, { localAddress: '127.0.0.2', ca })
      const who = JSON.parse(a.body.toString()) as { ip: string; protocol: string }
      expect(plainIp(who.ip) === '127.0.0.2' && who.protocol === 'https', `saw ${JSON.stringify(who)}`)
    })
  })
}

/**
 * One HUP, with an SSE stream read raw (to see how it ends), an EventSource
 * (to see it reconnect), a WebSocket and keep-alive load all open across it.
 * The SSE and WebSocket parts decide their own cases, so that one failing
 * (or not applying) leaves the others' verdicts standing.
 */
async function hupScenario(s: Served, r: Recorder) {
  const sseIds = ['sse-hup-stays-up', 'sse-hup-ends-cleanly', 'sse-hup-reconnect'] as const
  const wsIds = ['ws-hup-1001', 'ws-hup-reconnect'] as const
  await r.scenario([...sseIds, ...wsIds, 'hup-zero-failed'], async () => {
    const before = await s.show()
    const oldGeneration = before.machine.generation
    const oldPids = new Set(before.workers.map((w) => w.pid))
    /** Opens the clients of these cases unless none is pending; a failure to open fails them. */
    const open = async <T>(ids: readonly CaseId[], opening: () => Promise<T>): Promise<T | undefined> => {
      if (!ids.some((id) => r.pending(id))) return undefined
      try {
        return await opening()
      } catch (e) {
        for (const id of ids) r.fail(id, `before the reload: ${(e as Error).message}`)
        return undefined
      }
    }
    const sse = await open(sseIds, () => openStreams(s))
    const ws = await open(wsIds, () => openSocket(s))
    const load = startLoad(`${s.origin}/pid`, { connections: 4, keepAlive: true })
    try {
      await load.more(40)
      const sent = await ask(s.control, ['reload'])
      expect(sent.ok, `reload: ${sent.ok ? '' : sent.error}`)
      const ready = await waitFor(
        async () => {
          const now = await s.show()
          return (
            now.machine.generation > oldGeneration && running(now.workers, now.machine.generation).length === 2 && now
          )
        },
        { timeoutMs: 60_000, what: 'the new generation ready' },
      )
      const newPids = new Set(running(ready.workers, ready.machine.generation).map((w) => w.pid))
      const part = async (ids: readonly CaseId[], run: () => Promise<void>) => {
        try {
          await run()
        } catch (e) {
          for (const id of ids) r.fail(id, (e as Error).message)
        }
      }
      await Promise.all([
        sse && part(sseIds, () => afterReloadSse(sse, oldPids, newPids, r)),
        ws && part(wsIds, () => afterReloadSocket(s, ws, newPids, r)),
      ])
      await waitFor(async () => (await s.show()).workers.every((w) => w.generation > oldGeneration), {
        timeoutMs: 30_000,
        what: 'the old generation gone',
      })
      await load.more(40)
    } finally {
      sse?.close()
      ws?.socket.terminate()
      const result = await load.stop()
      const served = [...result.bodies.keys()].map(Number)
      if (result.failed > 0)
        r.fail(
          'hup-zero-failed',
          `${result.failed} of ${result.ok + result.failed} failed: ${[...new Set(result.errors)].slice(0, 3).join('; ')}`,
        )
      else if (!served.some((p) => oldPids.has(p)) || served.every((p) => oldPids.has(p)))
        r.fail('hup-zero-failed', 'the load did not span both generations')
      else r.pass('hup-zero-failed')
    }
  })
}

interface Streams {
  /** Pids of the raw stream's events, in order. */
  readonly raw: number[]
  /** How the raw stream's connection ended: 'clean' (a FIN), or what happened. */
  readonly rawEnded: Promise<string>
  /** Pids of the EventSource's events, across its reconnections. */
  readonly reconnecting: number[]
  close(): void
}

/** Opens both SSE clients and waits for the first event of each. */
async function openStreams(s: Served): Promise<Streams> {
  // A worker cut off at its graceful timeout cannot end the chunked body (that
  // would make a cut download look whole): clean here is a FIN, not a reset.
  const raw: number[] = []
  const rawEnded = new Promise<string>((resolve) => {
    let fin = false
    let error = ''
    request(`${s.origin}/sse`, { agent: false }, (res) => {
      res.setEncoding('utf8')
      res.on('data', (c: string) => {
        for (const m of c.matchAll(/data: (\d+)/g)) raw.push(Number(m[1]))
      })
      res.on('error', () => {})
    })
      .on('socket', (socket) => {
        socket.on('end', () => (fin = true))
        socket.on('error', (e: NodeJS.ErrnoException) => (error ||= e.code ?? e.message))
        socket.on('close', () => resolve(fin && !error ? 'clean' : `not closed cleanly: ${error || 'no FIN'}`))
      })
      .on('error', (e: NodeJS.ErrnoException) => (error ||= e.code ?? e.message))
      .end()
  })
  const es = new EventSource(`${s.origin}/sse`)
  const reconnecting: number[] = []
  es.onmessage = (e) => reconnecting.push(Number(e.data))
  const streams = { raw, rawEnded, reconnecting, close: () => es.close() }
  try {
    await waitFor(() => raw.length > 0 && reconnecting.length > 0, { timeoutMs: 20_000, what: 'the first SSE events' })
  } catch (e) {
    es.close()
    throw e
  }
  return streams
}

async function afterReloadSse(
  sse: Streams,
  oldPids: ReadonlySet<number | null>,
  newPids: ReadonlySet<number | null>,
  r: Recorder,
) {
  const seenAtReady = sse.raw.length
  await Promise.race([
    waitFor(() => sse.raw.length > seenAtReady, {
      timeoutMs: 30_000,
      what: 'an SSE event after the new generation was ready',
    }),
    sse.rawEnded,
  ])
  if (sse.raw.length > seenAtReady && oldPids.has(sse.raw.at(-1)!)) r.pass('sse-hup-stays-up')
  else r.fail('sse-hup-stays-up', `the stream ended with the reload: ${await sse.rawEnded}`)
  const ending = await sse.rawEnded
  if (ending === 'clean') r.pass('sse-hup-ends-cleanly')
  else r.fail('sse-hup-ends-cleanly', ending)
  await waitFor(() => sse.reconnecting.some((p) => newPids.has(p)), {
    timeoutMs: 30_000,
    what: 'an EventSource event from the new generation',
  })
  r.pass('sse-hup-reconnect')
}

interface OpenSocket {
  readonly socket: WebSocket
  readonly closed: Promise<number>
}

/** Opens a WebSocket and waits for its first message. */
async function openSocket(s: Served): Promise<OpenSocket> {
  const socket = new WebSocket(`ws://127.0.0.1:${s.port}/ws`)
  socket.on('error', () => {})
  const closed = new Promise<number>((resolve) => socket.on('close', (code) => resolve(code)))
  const opened = new Promise<void>((resolve, reject) => {
    socket.once('message', () => resolve())
    socket.once('error', reject)
  })
  await withTimeout(opened, 20_000, 'the WebSocket opening').catch((e: unknown) => {
    socket.terminate()
    throw e
  })
  return { socket, closed }
}

async function afterReloadSocket(s: Served, ws: OpenSocket, newPids: ReadonlySet<number | null>, r: Recorder) {
  const code = await withTimeout(ws.closed, (GRACEFUL_TIMEOUT + 20) * 1000, 'the old WebSocket closing')
  if (code === 1001) r.pass('ws-hup-1001')
  else r.fail('ws-hup-1001', `closed with ${code}`)
  const again = new WebSocket(`ws://127.0.0.1:${s.port}/ws`)
  try {
    const pid = await new Promise<string>((resolve, reject) => {
      again.once('message', (m) => resolve(m.toString()))
      again.once('error', reject)
    })
    if (newPids.has(Number(pid))) r.pass('ws-hup-reconnect')
    else r.fail('ws-hup-reconnect', `served by ${pid}, not the new generation (${[...newPids].join(', ')})`)
  } finally {
    again.terminate()
  }
}

/** A request in flight when TERM comes finishes; then the master exits 0. */
async function termScenario(s: Served, r: Recorder) {
  await r.scenario(['term-in-flight', 'term-exit'], async () => {
    const slow = http(`${s.origin}/slow?ms=3000`, { agent: false })
    await waitFor(async () => (await s.show()).inFlight > 0, { timeoutMs: 10_000, what: 'the slow request in flight' })
    s.corral.signal('SIGTERM')
    const a = await slow.catch((e: Error) => e)
    if (a instanceof Error) r.fail('term-in-flight', a.message)
    else if (a.status !== 200 || a.body.toString() !== 'slow done')
      r.fail('term-in-flight', `status ${a.status}: ${a.body.toString().slice(0, 80)}`)
    else r.pass('term-in-flight')
    const exit = await withTimeout(s.corral.exited, (GRACEFUL_TIMEOUT + 10) * 1000, 'the master exiting after TERM')
    if (exit.code === 0) r.pass('term-exit')
    else r.fail('term-exit', `exit ${exit.code ?? exit.signal}: ${tail(s.corral)}`)
  })
}

async function recyclingCorral(framework: Framework, app: ScratchApp, r: Recorder) {
  await r.scenario(['recycle-zero-failed'], async () => {
    const s = await serve(framework, app, ['--max-requests', '40', '--max-requests-jitter', '10'])
    const load = startLoad(`${s.origin}/pid`, { connections: 4, keepAlive: true })
    try {
      await waitFor(async () => (await s.show()).restarts['max-requests']! >= 4, {
        timeoutMs: 60_000,
        what: 'four workers recycled',
      })
    } finally {
      const result = await load.stop()
      if (result.failed > 0)
        r.fail(
          'recycle-zero-failed',
          `${result.failed} of ${result.ok + result.failed} failed: ${[...new Set(result.errors)].slice(0, 3).join('; ')}`,
        )
      else r.pass('recycle-zero-failed')
    }
  })
}

async function tlsCorral(framework: Framework, app: ScratchApp, certs: Certs, r: Recorder) {
  const ids = ['https-scheme', ...H2_CASES] as const
  await r.scenario(ids, async () => {
    const protocols = framework.h2 ? ['--http-protocols', 'h2,h1'] : []
    const s = await serve(
      framework,
      app,
      ['--certfile', certs.serverCert, '--keyfile', certs.serverKey, ...protocols],
      'https',
    )
    const ca = readFileSync(certs.ca, 'utf8')
    await r.check('https-scheme', async () => {
      const who = JSON.parse((await http(`${s.origin}/whoami`, { ca })).body.toString()) as { protocol: string }
      expect(who.protocol === 'https', `saw ${JSON.stringify(who)}`)
    })
    await r.check('h2-page', async () => {
      const a = await h2(s.origin, ca, '/')
      expect(a.alpn === 'h2', `ALPN ${a.alpn}`)
      expect(
        a.status === 200 && a.body.toString().includes(`hello from ${framework.id}`),
        `status ${a.status}: ${a.body.toString().slice(0, 80)}`,
      )
    })
    await r.check('h2-not-found', async () => {
      const a = await h2(s.origin, ca, '/missing-page')
      expect(a.status === 404, `status ${a.status}`)
    })
    await r.check('h2-big', async () => {
      const a = await h2(s.origin, ca, '/big')
      expect(a.status === 200 && a.body.length === 10 * MiB, `status ${a.status}, ${a.body.length} bytes`)
    })
    await r.check('h2-upload', async () => {
      const body = tenMiB()
      const a = await h2(s.origin, ca, '/upload', { method: 'POST', body })
      expect(a.status >= 200 && a.status < 300, `status ${a.status}: ${a.body.toString().slice(0, 80)}`)
      const got = JSON.parse(a.body.toString()) as { bytes: number; sha256: string }
      expect(got.bytes === 10 * MiB && got.sha256 === sha256(body), `the app got ${got.bytes} bytes`)
    })
  })
}
