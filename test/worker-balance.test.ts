// --balance-slack against a real corral (spec/worker-limits.md): workers
// share one listening socket, and a worker holding as many long-lived
// connections as the others' average plus the slack stops accepting until it falls
// back (the others' average plus the slack, at most 13 of 50 over 4 workers,
// 4 of 16). Checked with counts, never times: which worker each connection
// landed on comes from the workers themselves (the app answers with its pid
// and how many connections it holds), for 50 keep-alive connections made
// straight to corral, and for the upstream keep-alive pool of a real nginx;
// and a HUP while balancing loses no request.
import type { ChildProcess } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { Agent, request } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { fixture, freePort, isAlive, killAll, startCorral, track, waitFor, type Corral } from './helpers/corral.ts'
import { KeepAliveClient } from './helpers/keep-alive-client.ts'
import { startLoad } from './helpers/load.ts'
import { startNginx } from './helpers/nginx.ts'

afterEach(killAll)

const WORKERS = 4
/** The default --balance-slack. */
const SLACK = 1
/** The most connections of `total` one worker may hold (balanceCap in src/worker/accept-gate.ts): 13 of 50, 4 of 16. */
const mostOf = (total: number) => Math.floor(total / WORKERS + (SLACK * (WORKERS - 1)) / WORKERS)

/** corral -w 4 with app-held.ts, once every worker knows it balances against the 3 others. */
async function start(signal: AbortSignal, args: string[] = []) {
  const port = await freePort()
  const corral = startCorral(
    ['-w', String(WORKERS), '-b', `127.0.0.1:${port}`, '--log-level', 'debug', ...args, fixture('app-held.ts')],
    { signal },
  )
  await corral.untilReady()
  await balancing(corral)
  return { corral, port }
}

/** Waits until `WORKERS` workers (after `from` in the log) have heard that they balance against each other. */
function balancing(corral: Corral, from = 0): Promise<boolean> {
  const line = new RegExp(`Balancing connections across ${WORKERS} workers`, 'g')
  return waitFor(() => (corral.log().slice(from).match(line)?.length ?? 0) >= WORKERS, { what: 'balancing to start' })
}

/** One raw keep-alive connection; the app answers "PID HELD". */
class Connection extends KeepAliveClient {
  override async ask(): Promise<string> {
    const answer = await super.ask()
    if (!answer.startsWith('200 ')) throw new Error(`answered ${answer}`)
    return answer.slice(4)
  }
}

/** How many times each value occurs. */
function tally(values: string[]): Map<string, number> {
  const counts = new Map<string, number>()
  for (const v of values) counts.set(v, (counts.get(v) ?? 0) + 1)
  return counts
}

describe('balanced accepts (--balance-slack)', () => {
  it("50 keep-alive connections opened at once: no worker holds more than the others' average plus the slack", async ({
    signal,
  }) => {
    const { corral, port } = await start(signal)
    const connections = Array.from({ length: 50 }, () => new Connection(port))
    try {
      // Every connection is answered: balancing never leaves one waiting for good.
      const answers = await Promise.all(connections.map((c) => c.ask()))
      const perWorker = tally(answers.map((a) => a.split(' ')[0]!))
      const bound = mostOf(50)
      expect(perWorker.size).toBe(WORKERS)
      for (const [pid, count] of perWorker) expect({ pid, count }).toEqual({ pid, count: Math.min(count, bound) })
      expect(new Set(perWorker.keys())).toEqual(new Set(corral.workers().map(String)))
      // Each worker's own count of what it holds agrees, asked on the same connections again.
      const again = await Promise.all(connections.map((c) => c.ask()))
      for (const a of again) {
        const [pid, held] = a.split(' ')
        expect(Number(held)).toBe(perWorker.get(pid!))
      }
    } finally {
      for (const c of connections) c.socket.destroy()
    }
  })

  it('0 failed requests across a HUP while balancing, and the new generation balances too', async ({ signal }) => {
    const { corral, port } = await start(signal)
    const before = corral.workers()
    const load = startLoad(`http://127.0.0.1:${port}/`, { connections: 16, keepAlive: true })
    // Wait until the load has spread, as seen by a pause for balance.
    await corral.waitForLog(/balanced share of 4 workers: \d+\); not accepting/)
    const mark = corral.log().length
    corral.signal('SIGHUP')
    await corral.untilReloaded(1)
    await balancing(corral, mark)
    await waitFor(() => before.every((pid) => !isAlive(pid)), { what: 'old generation to exit' })
    // The old generation's clients were told Connection: close and came back to the new one.
    await waitFor(() => /balanced share of 4 workers/.test(corral.log().slice(mark)), {
      what: 'a pause in generation 1',
    })
    const result = await load.stop()
    expect(result.errors.slice(0, 5)).toEqual([])
    expect(result.failed).toBe(0)
    const after = new Set(corral.workers().map(String))
    const servedBy = new Set([...result.bodies.keys()].map((b) => b.split(' ')[0]!))
    expect(before.some((pid) => servedBy.has(String(pid)))).toBe(true)
    expect([...after].some((pid) => servedBy.has(pid))).toBe(true)
  })
})

/** One GET on `agent`; rejects unless it is a 200. */
function body(url: string, agent: Agent): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request(url, { agent }, (res) => {
      let text = ''
      res.setEncoding('utf8')
      res.on('data', (c: string) => (text += c))
      res.on('end', () => (res.statusCode === 200 ? resolve(text) : reject(new Error(`${res.statusCode}: ${text}`))))
    })
    req.on('error', reject)
    req.end()
  })
}

describe('behind nginx with an upstream keep-alive pool of 16', () => {
  let nginx: ChildProcess | undefined
  let dir: string | undefined
  afterEach(() => {
    if (nginx?.pid) track(nginx.pid)
    if (dir) rmSync(dir, { recursive: true, force: true })
  })

  async function proxyThroughNginx(upstreamPort: number): Promise<number> {
    const port = await freePort()
    dir = mkdtempSync(join(tmpdir(), 'corral-balance-nginx-'))
    nginx = await startNginx(
      dir,
      {
        errorLevel: 'warn',
        workerConnections: 256,
        http: `
  upstream corral { server 127.0.0.1:${upstreamPort}; keepalive 16; }
  server {
    listen 127.0.0.1:${port};
    location / { proxy_pass http://corral; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }`,
      },
      [port],
    )
    return port
  }

  it('16 upstream connections under load: no worker ever holds more than 4', async ({ signal }) => {
    // --keep-alive above the test's length: the pool's idle connections stay, so the pool is the 16 connections.
    const { port } = await start(signal, ['--keep-alive', '60'])
    const nginxPort = await proxyThroughNginx(port)
    // 16 clients at a time: nginx never needs more than 16 upstream connections, so its pool is all there is.
    const agent = new Agent({ keepAlive: true, maxSockets: 16 })
    const bodies: string[] = []
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        for (let i = 0; i < 250; i++) bodies.push(await body(`http://127.0.0.1:${nginxPort}/`, agent))
      }),
    )
    agent.destroy()
    // Every answer carries the answering worker's count of the connections it held at that moment.
    const most = new Map<string, number>()
    for (const body of bodies) {
      const [pid, held] = body.split(' ')
      most.set(pid!, Math.max(most.get(pid!) ?? 0, Number(held)))
    }
    const bound = mostOf(16)
    expect(most.size).toBe(WORKERS)
    for (const [pid, held] of most) expect({ pid, held }).toEqual({ pid, held: Math.min(held, bound) })
    expect(readFileSync(join(dir!, 'error.log'), 'utf8')).not.toMatch(/\[(error|crit|alert|emerg)\]/)
  })
})
