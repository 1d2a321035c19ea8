// What the kernel says about listening sockets (ss from iproute2), and
// one-shot HTTP requests over TCP or a unix socket, for the listener tests.
import { execFileSync } from 'node:child_process'
import { request } from 'node:http'
import { connect, createServer, type Socket } from 'node:net'

export function hasSs(): boolean {
  try {
    execFileSync('ss', ['-V'], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
}

export interface ListeningSocket {
  /** listen(2)'s backlog, as the kernel applied it (ss's Send-Q). */
  backlog: number
  /** Processes holding the socket. */
  pids: number[]
}

/** The TCP sockets in LISTEN state on a local port. */
export function listeningOn(port: number): ListeningSocket[] {
  const out = execFileSync('ss', ['-Hltnp', `sport = :${port}`]).toString()
  return out
    .split('\n')
    .filter((l) => l.trim())
    .map((line) => ({
      backlog: Number(line.trim().split(/\s+/)[2]),
      pids: [...line.matchAll(/pid=(\d+)/g)].map((m) => Number(m[1])).sort((a, b) => a - b),
    }))
}

/**
 * Connections waiting in the kernel's accept queue of the TCP listener on a
 * local port, accepted by no process yet (ss's Recv-Q for a LISTEN socket).
 */
export function acceptQueueLength(port: number): number {
  const line = execFileSync('ss', ['-Hltn', `sport = :${port}`])
    .toString()
    .split('\n')
    .find((l) => l.trim())
  return line === undefined ? 0 : Number(line.trim().split(/\s+/)[1])
}

/** Pids owning accepted (server-side) connections of a local port; '' marks a connection nobody accepted yet. */
export function serverSideOwners(port: number): string[] {
  const out = execFileSync('ss', ['-tnpH', 'state', 'established', `( sport = :${port} )`]).toString()
  return out
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => /pid=(\d+)/.exec(l)?.[1] ?? '')
}

export interface Reply {
  status: number
  body: string
}

/** One GET on a new connection, to host:port or a unix socket path. */
export function getFrom(
  target: { host: string; port: number } | { socketPath: string },
  path = '/',
  timeoutMs = 10_000,
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request({ ...target, path, agent: false, timeout: timeoutMs }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (c: string) => (body += c))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }))
      res.on('error', reject)
    })
    req.on('timeout', () => req.destroy(new Error('request timed out')))
    req.on('error', reject)
    req.end()
  })
}

/** Whether this machine can listen on ::1. */
export function hasIPv6Loopback(): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer()
    s.once('error', () => resolve(false))
    s.listen(0, '::1', () => s.close(() => resolve(true)))
  })
}

/** A port free on both 127.0.0.1 and ::1 (a small window remains before corral binds it). */
export async function freeDualPort(): Promise<number> {
  for (;;) {
    const port = await new Promise<number>((resolve, reject) => {
      const s = createServer()
      s.on('error', reject)
      s.listen(0, '127.0.0.1', () => {
        const p = (s.address() as { port: number }).port
        s.close(() => resolve(p))
      })
    })
    const free6 = await new Promise<boolean>((resolve) => {
      const s = createServer()
      s.once('error', () => resolve(false))
      s.listen(port, '::1', () => s.close(() => resolve(true)))
    })
    if (free6) return port
  }
}

/** Whether something accepts TCP connections on 127.0.0.1:`port` now (a server that has come up). */
export function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1')
    s.on('connect', () => {
      s.destroy()
      resolve(true)
    })
    s.on('error', () => resolve(false))
  })
}

/** Opens `n` connections that each send an unfinished request head; resolves once all are connected. */
export async function openSlowloris(port: number, n: number): Promise<{ sockets: Socket[]; closed: () => number }> {
  let closed = 0
  const sockets = await Promise.all(
    Array.from(
      { length: n },
      () =>
        new Promise<Socket>((resolve, reject) => {
          const socket = connect(port, '127.0.0.1', () => {
            socket.write('GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ')
            resolve(socket)
          })
          socket.once('error', reject)
          socket.once('close', () => closed++)
        }),
    ),
  )
  return { sockets, closed: () => closed }
}
