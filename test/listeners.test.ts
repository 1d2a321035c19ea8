// End-to-end: this test process plays the master (it opens the listeners and
// never accepts), real child processes play the workers.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process'
import fs from 'node:fs'
import http from 'node:http'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { type Listener, ListenerError, openListeners } from '../src/net/listeners.ts'
import { waitFor } from './helpers/corral.ts'
import { acceptQueueLength, hasSs, serverSideOwners } from './helpers/sockets.ts'

const WORKER = new URL('./fixtures/listener-worker.ts', import.meta.url).pathname
const MASTER = new URL('./fixtures/listener-master.ts', import.meta.url).pathname

const children = new Set<ChildProcess>()
const listeners: Listener[] = []
const tmpDirs: string[] = []

afterEach(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL')
  children.clear()
  for (const l of listeners.splice(0)) l.close()
  for (const d of tmpDirs.splice(0)) fs.rmSync(d, { recursive: true, force: true })
})

function open(...args: Parameters<typeof openListeners>): Listener[] {
  const ls = openListeners(...args)
  listeners.push(...ls)
  return ls
}

function tmpDir(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'corral-listeners-'))
  tmpDirs.push(d)
  return d
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve()
  return new Promise((resolve) => child.once('exit', () => resolve()))
}

async function spawnWorker(fd: number): Promise<ChildProcess> {
  const child = spawn(process.execPath, [WORKER], { stdio: ['ignore', 'inherit', 'inherit', 'ipc', fd] })
  children.add(child)
  await new Promise<void>((resolve, reject) => {
    child.once('message', () => resolve())
    child.once('exit', (code, signal) => reject(new Error(`worker exited early (${code ?? signal})`)))
  })
  return child
}

function portOf(l: Listener): number {
  return Number(new URL(l.address).port)
}

/** One request on a new connection; resolves with the body. */
function get(target: { port: number; host?: string } | { socketPath: string }): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = http.get({ ...target, path: '/', agent: false, timeout: 5000 }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (d: string) => (body += d))
      res.on('end', () => resolve(body))
    })
    req.on('timeout', () => req.destroy(new Error('request timed out')))
    req.on('error', reject)
  })
}

const pidOf = (body: string): number => Number(/^hello from (\d+)$/.exec(body)?.[1])

/** A raw request sent on a new connection; resolves with the response body. */
function pendingRequest(port: number): { socket: net.Socket; response: Promise<string> } {
  const socket = net.connect(port, '127.0.0.1')
  socket.write('GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
  let data = ''
  socket.setEncoding('utf8')
  socket.on('data', (d: string) => (data += d))
  const response = new Promise<string>((resolve, reject) => {
    socket.on('end', () => resolve(data.slice(data.indexOf('\r\n\r\n') + 4)))
    socket.on('error', reject)
  })
  return { socket, response }
}

/** Exited, or a zombie waiting for a reaper (pid 1 here may be slow to reap orphans). */
function isGone(pid: number): boolean {
  try {
    process.kill(pid, 0)
  } catch {
    return true
  }
  try {
    return /^\d+ \(.*\) Z/.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'))
  } catch {
    return true
  }
}

describe('openListeners + workers on an inherited fd', () => {
  it('queues connections in the kernel before any worker, and this process never accepts', async () => {
    const [l] = open([{ kind: 'tcp', host: '127.0.0.1', port: 0 }])
    if (!l) throw new Error('no listener')
    expect(l.address).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/)
    const port = portOf(l)
    expect(port).toBeGreaterThan(0)
    // A TCP address reaches LISTEN while the master goes on (src/net/listeners.ts).
    await l.listening

    // LISTEN now (a bound-only socket would refuse): the handshake completes,
    // but nobody answers.
    const early = pendingRequest(port)
    await new Promise<void>((resolve, reject) => {
      early.socket.once('connect', resolve)
      early.socket.once('error', reject)
    })
    if (hasSs()) {
      // In the accept queue, accepted by no one: the kernel says so.
      await waitFor(() => acceptQueueLength(port) === 1, { what: 'the connection in the accept queue' })
      expect(serverSideOwners(port)).toEqual([''])
    }

    const worker = await spawnWorker(l.fd)
    expect(pidOf(await early.response)).toBe(worker.pid)
  })

  it('spreads connections over two workers, survives one dying, and queues while none is left', async () => {
    const [l] = open([{ kind: 'tcp', host: '127.0.0.1', port: 0 }])
    if (!l) throw new Error('no listener')
    const port = portOf(l)
    const [a, b] = await Promise.all([spawnWorker(l.fd), spawnWorker(l.fd)])
    if (!a?.pid || !b?.pid) throw new Error('no workers')

    const seen = new Map<number, number>()
    for (let round = 0; round < 20 && seen.size < 2; round++) {
      const bodies = await Promise.all(Array.from({ length: 20 }, () => get({ port, host: '127.0.0.1' })))
      for (const body of bodies) seen.set(pidOf(body), (seen.get(pidOf(body)) ?? 0) + 1)
    }
    expect([...seen.keys()].sort()).toEqual([a.pid, b.pid].sort())

    if (hasSs()) {
      // Idle connections stay open in whichever worker accepted them.
      const held = Array.from({ length: 10 }, () => net.connect(port, '127.0.0.1'))
      const owners = await waitFor(
        () => {
          const now = serverSideOwners(port)
          return now.length === held.length && now.every((o) => o !== '') && now
        },
        { what: 'every held connection accepted by a worker' },
      )
      for (const h of held) h.destroy()
      expect(owners.length).toBeGreaterThan(0)
      for (const o of owners) expect([String(a.pid), String(b.pid)]).toContain(o)
      expect(owners).not.toContain(String(process.pid))
    }

    a.kill('SIGKILL')
    await exited(a)
    const after = await Promise.all(Array.from({ length: 20 }, () => get({ port, host: '127.0.0.1' })))
    for (const body of after) expect(pidOf(body)).toBe(b.pid)

    // No worker at all: the master's fd keeps the socket listening.
    b.kill('SIGKILL')
    await exited(b)
    const meanwhile = pendingRequest(port)
    if (hasSs()) await waitFor(() => acceptQueueLength(port) === 1, { what: 'the request queued in the kernel' })
    const c = await spawnWorker(l.fd)
    expect(pidOf(await meanwhile.response)).toBe(c.pid)
  })

  it('serves IPv6 on [::1]', async (ctx) => {
    let l: Listener | undefined
    try {
      ;[l] = open([{ kind: 'tcp', host: '::1', port: 0 }])
    } catch (err) {
      if (err instanceof ListenerError && /EADDRNOTAVAIL|EAFNOSUPPORT/.test(err.message))
        ctx.skip('no IPv6 loopback here')
      throw err
    }
    if (!l) throw new Error('no listener')
    expect(l.address).toMatch(/^http:\/\/\[::1\]:\d+$/)
    const worker = await spawnWorker(l.fd)
    expect(pidOf(await get({ host: '::1', port: portOf(l) }))).toBe(worker.pid)
  })

  it('serves a unix socket, replaces a stale socket file, removes the file on close', async () => {
    const dir = tmpDir()
    const sock = path.join(dir, 'app.sock')
    // A stale socket file, as left by a server that was SIGKILLed.
    spawnSync(process.execPath, [
      '-e',
      `require('node:net').createServer().listen(${JSON.stringify(sock)}, () => process.kill(process.pid, 'SIGKILL'))`,
    ])
    expect(fs.lstatSync(sock).isSocket()).toBe(true)

    const [l] = open([{ kind: 'unix', path: sock }])
    if (!l) throw new Error('no listener')
    expect(l.address).toBe(`unix:${sock}`)
    const worker = await spawnWorker(l.fd)
    expect(pidOf(await get({ socketPath: sock }))).toBe(worker.pid)

    // A live socket is never taken over.
    expect(() => openListeners([{ kind: 'unix', path: sock }])).toThrow(/already in use/)

    worker.kill('SIGKILL')
    await exited(worker)
    l.close()
    expect(fs.existsSync(sock)).toBe(false)
    expect(fs.readdirSync(dir)).toEqual([]) // no temporary name left behind
  })

  it('keeps the unix socket file on close({ unlink: false }) (hand-over to another master)', () => {
    const sock = path.join(tmpDir(), 'keep.sock')
    const [l] = openListeners([{ kind: 'unix', path: sock }])
    l?.close({ unlink: false })
    expect(fs.lstatSync(sock).isSocket()).toBe(true)
  })

  it('refuses to replace a unix path that is not a socket', () => {
    const file = path.join(tmpDir(), 'not-a-socket')
    fs.writeFileSync(file, 'keep me')
    expect(() => openListeners([{ kind: 'unix', path: file }])).toThrow(/not a socket/)
    expect(fs.readFileSync(file, 'utf8')).toBe('keep me')
  })

  it('takes over an inherited fd://N', async () => {
    const [l] = open([{ kind: 'tcp', host: '127.0.0.1', port: 0 }])
    if (!l) throw new Error('no listener')
    const master = spawn(process.execPath, [MASTER], { stdio: ['pipe', 'pipe', 'inherit', l.fd] })
    children.add(master)
    const line = await new Promise<string>((resolve, reject) => {
      let out = ''
      master.stdout?.setEncoding('utf8').on('data', (d: string) => {
        out += d
        if (out.includes('\n')) resolve(out.trim())
      })
      master.once('exit', (code) => reject(new Error(`listener-master exited (${code})`)))
    })
    const info = JSON.parse(line) as { address: string; workerPid: number }
    expect(info.address).toBe(l.address)
    expect(pidOf(await get({ port: portOf(l), host: '127.0.0.1' }))).toBe(info.workerPid)
    master.stdin?.end()
    await exited(master)
    // Its worker went with it (IPC disconnect), and the socket still listens here.
    await waitFor(() => isGone(info.workerPid), { what: 'the worker to go with its master' })
  })

  it('rejects fds that are not listening-capable sockets', () => {
    const fd = fs.openSync(WORKER, 'r')
    try {
      expect(() => openListeners([{ kind: 'fd', fd }])).toThrow(`Can't use fd://${fd}: not a socket`)
    } finally {
      fs.closeSync(fd)
    }
    expect(() => openListeners([{ kind: 'fd', fd: 987 }])).toThrow(/fd:\/\/987: EBADF/)
  })

  it('says clearly when the address is in use, and leaves nothing open', async () => {
    const [l] = open([{ kind: 'tcp', host: '127.0.0.1', port: 0 }])
    if (!l) throw new Error('no listener')
    // In LISTEN, as a running master's socket is (the helper listens beside the first worker's start).
    await l.listening
    const port = portOf(l)
    const sock = path.join(tmpDir(), 'ok.sock')
    let error: unknown
    try {
      openListeners([
        { kind: 'unix', path: sock },
        { kind: 'tcp', host: '127.0.0.1', port },
      ])
    } catch (err) {
      error = err
    }
    expect(error).toBeInstanceOf(ListenerError)
    expect((error as Error).message).toBe(`Can't bind 127.0.0.1:${port}: EADDRINUSE (address already in use)`)
    expect(fs.readdirSync(path.dirname(sock))).toEqual([]) // the unix listener opened first was undone

    // Also when the port is held by an ordinary Node server.
    const server = net.createServer()
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    const busy = (server.address() as net.AddressInfo).port
    try {
      expect(() => openListeners([{ kind: 'tcp', host: '127.0.0.1', port: busy }])).toThrow(/EADDRINUSE/)
    } finally {
      server.close()
    }
    expect(() => openListeners([{ kind: 'tcp', host: 'no-such-host.invalid', port: 80 }])).toThrow(
      "Can't bind no-such-host.invalid:80: ENOTFOUND (the host name did not resolve)",
    )
  })
})
