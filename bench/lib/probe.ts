// Fresh-connection HTTP probes: one TCP connection, one GET, Connection:
// close, success = a complete "HTTP/1.1 200" status line.
import { connect, createServer } from 'node:net'
import { now, sleep } from './proc.ts'

const request = Buffer.from('GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n')

export type ProbeResult = { ok: true; at: number } | { ok: false; at: number; error: string }

export function probe(port: number, timeoutMs = 2000): Promise<ProbeResult> {
  return new Promise((resolve) => {
    let data = ''
    let done = false
    const finish = (r: ProbeResult) => {
      if (done) return
      done = true
      clearTimeout(timer)
      sock.destroy()
      resolve(r)
    }
    const sock = connect({ host: '127.0.0.1', port })
    const timer = setTimeout(() => finish({ ok: false, at: now(), error: 'timeout' }), timeoutMs)
    sock.on('connect', () => sock.write(request))
    sock.on('data', (b) => {
      data += b.toString('latin1')
      if (data.includes('\r\n')) {
        if (data.startsWith('HTTP/1.1 200')) finish({ ok: true, at: now() })
        else finish({ ok: false, at: now(), error: `status ${data.slice(0, data.indexOf('\r\n'))}` })
      }
    })
    sock.on('error', (e: NodeJS.ErrnoException) => finish({ ok: false, at: now(), error: e.code ?? e.message }))
    sock.on('close', () =>
      finish({ ok: false, at: now(), error: data ? 'closed mid-response' : 'closed without response' }),
    )
  })
}

export interface PollOutcome {
  /** performance.now() when the first successful response arrived. */
  firstOk: number
  attempts: number
  failures: Record<string, number>
}

/**
 * Start a fresh-connection probe every `everyMs` (not waiting for earlier ones:
 * connections may sit in the kernel's accept queue while no process accepts)
 * until one succeeds (a refused connection fails at once and is simply retried
 * on the next tick). Probes still in flight when one succeeds are ignored.
 */
export async function pollUntilOk(
  port: number,
  opts: { everyMs?: number; timeoutMs: number; maxInFlight?: number },
): Promise<PollOutcome> {
  const everyMs = opts.everyMs ?? 2
  const maxInFlight = opts.maxInFlight ?? 64
  const deadline = now() + opts.timeoutMs
  let inFlight = 0
  let attempts = 0
  const failures: Record<string, number> = {}
  let firstOk: number | undefined
  while (firstOk === undefined) {
    if (now() > deadline)
      throw new Error(
        `no successful response on port ${port} within ${opts.timeoutMs} ms (${attempts} attempts, failures ${JSON.stringify(failures)})`,
      )
    if (inFlight < maxInFlight) {
      inFlight++
      attempts++
      void probe(port, Math.max(50, deadline - now())).then((r) => {
        inFlight--
        if (r.ok) firstOk ??= r.at
        else failures[r.error] = (failures[r.error] ?? 0) + 1
      })
    }
    // The time recorded is the probe's own completion time, so how late this
    // loop notices the success does not change the figure.
    await sleep(everyMs)
  }
  return { firstOk, attempts, failures }
}

/**
 * Background prober for "did anything fail meanwhile": a fresh-connection
 * request every `everyMs`, counting outcomes, until stopped.
 */
export function backgroundProber(
  port: number,
  everyMs = 5,
): { stop(): Promise<{ ok: number; failed: Record<string, number> }> } {
  let running = true
  let ok = 0
  const failed: Record<string, number> = {}
  const pending = new Set<Promise<void>>()
  const loop = (async () => {
    while (running) {
      const p = probe(port, 5000).then((r) => {
        if (r.ok) ok++
        else failed[r.error] = (failed[r.error] ?? 0) + 1
      })
      pending.add(p)
      void p.finally(() => pending.delete(p))
      await sleep(everyMs)
    }
  })()
  return {
    async stop() {
      running = false
      await loop
      await Promise.all(pending)
      return { ok, failed }
    },
  }
}

/** A free loopback port (there is a small window before a server binds it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer()
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const a = s.address()
      s.close(() => (a && typeof a === 'object' ? resolve(a.port) : reject(new Error('no port'))))
    })
  })
}
