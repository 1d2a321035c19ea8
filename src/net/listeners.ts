// Listening sockets owned by the master, served by the workers.
//
// The master binds every address and holds the fds, but never accepts: no
// handle of the master's is ever watched by its event loop, so the kernel
// hands each connection to whichever worker accepts first. The sockets are
// nevertheless put into LISTEN state right away (by a short-lived helper
// process, see `listenElsewhere`), so that connections queue in the kernel
// before the first worker is up and while workers are being replaced, and so
// that "address already in use" is reported here rather than by a worker.

import { spawn, spawnSync } from 'node:child_process'
import fs from 'node:fs'
import net from 'node:net'
import path from 'node:path'
import util from 'node:util'
import { bindToString, type Bind } from './binds.ts'

/** Where a worker binds its own socket under --reuse-port: the address the master reserved. */
export interface ReusePortAddress {
  host: string
  port: number
}

export interface Listener {
  bind: Bind
  /** The master's fd: pass it in a worker's `stdio` array. */
  fd: number
  /** `http://127.0.0.1:8000` (the real port when 0 was asked), `unix:/path`, or `fd://N`. */
  address: string
  /**
   * --reuse-port: the master's socket only reserves the address (bound, not
   * listening, never handed to workers); each worker listens on a socket of
   * its own bound here with SO_REUSEPORT.
   */
  reusePort?: ReusePortAddress
  /**
   * Settles once the socket is in LISTEN state: already, except for TCP
   * --bind addresses, whose listen(2) runs while the master goes on to spawn
   * its first worker (see `listenElsewhere`). Rejects with a ListenerError.
   */
  listening: Promise<void>
  /**
   * Closes the master's fd. A unix socket file is removed too unless
   * `unlink: false` (when another process, e.g. a re-exec'd master, goes on
   * serving that path).
   */
  close(opts?: { unlink?: boolean }): void
}

export class ListenerError extends Error {
  override name = 'ListenerError'
}

/** gunicorn's default; the kernel caps it at net.core.somaxconn. */
const DEFAULT_BACKLOG = 2048

// Internal handle API of node:net (what node:cluster uses for shared
// handles): creates and binds a TCPWrap/PipeWrap without listen(2) and
// without registering it in the event loop.
interface RawHandle {
  readonly fd: number
  close(): void
  getsockname?(out: { address?: string; family?: string; port?: number }): number
}
type CreateServerHandle = (
  address: string | null,
  port: number,
  addressType?: number,
  fd?: number,
) => RawHandle | number

let tempSeq = 0

const createServerHandle = (net as unknown as { _createServerHandle?: CreateServerHandle })._createServerHandle

function errnoText(errno: number): string {
  return `${util.getSystemErrorName(errno)} (${util.getSystemErrorMessage(errno).toLowerCase()})`
}

function errorText(err: unknown): string {
  const e = err as NodeJS.ErrnoException
  return e.code ? `${e.code} (${e.message.replace(/^\w+: /, '').replace(/,.*$/, '')})` : String(err)
}

interface Opened {
  bind: Bind
  handle: RawHandle
  /** unix only: where the socket was bound, and where it must end up. */
  tempPath?: string
  finalPath?: string
  /** --reuse-port: bound only; workers listen on sockets of their own. */
  placeholder?: boolean
}

/**
 * Binds every address, puts each socket into LISTEN state without this
 * process ever accepting on it, and returns the fds to hand to workers.
 * Throws a ListenerError (message only, meant for the operator) and leaves
 * nothing open when any address fails.
 */
export function openListeners(binds: Bind[], opts: { backlog?: number; reusePort?: boolean } = {}): Listener[] {
  if (!createServerHandle)
    throw new ListenerError("This Node.js has no net._createServerHandle: can't bind without accepting")
  const backlog = opts.backlog ?? DEFAULT_BACKLOG
  const opened: Opened[] = []
  const renamed: string[] = []
  let listening: Promise<void>
  try {
    checkUnixPaths(binds)
    const resolved = resolveHosts(binds)
    for (const bind of binds) opened.push(bindOne(bind, resolved, opts.reusePort === true))
    listening = listenElsewhere(
      opened.filter((o) => !o.placeholder),
      backlog,
    )
    for (const o of opened) {
      if (o.tempPath && o.finalPath) {
        // Atomically replaces a stale socket file, too.
        fs.renameSync(o.tempPath, o.finalPath)
        renamed.push(o.finalPath)
      }
    }
  } catch (err) {
    for (const o of opened) o.handle.close() // libuv unlinks a temp path on close
    for (const p of renamed) fs.rmSync(p, { force: true })
    if (err instanceof ListenerError) throw err
    throw new ListenerError(`Can't open listeners: ${errorText(err)}`)
  }
  // Told through each listener's `listening`; never an unhandled rejection.
  listening.catch(() => {})
  return opened.map((o) => toListener(o, listening))
}

function bindOne(bind: Bind, resolved: Map<string, string>, reusePort: boolean): Opened {
  const create = createServerHandle as CreateServerHandle
  const what = bindToString(bind)
  switch (bind.kind) {
    case 'tcp': {
      if (!Number.isInteger(bind.port) || bind.port < 0 || bind.port > 65535) {
        throw new ListenerError(`Can't bind ${what}: the port must be an integer from 0 to 65535`)
      }
      const host = resolved.get(bind.host) ?? bind.host
      const family = net.isIP(host)
      if (family === 0)
        throw new ListenerError(`Can't bind ${what}: ${host.replace(/^!/, '')} (the host name did not resolve)`)
      const h = create(host, bind.port, family)
      if (typeof h === 'number') throw new ListenerError(`Can't bind ${what}: ${errnoText(h)}`)
      // libuv defers a bind's EADDRINUSE to listen() (and getsockname()),
      // and the helper's fresh handle would not see it: it would listen on
      // the unbound socket, which the kernel binds to a random port.
      const err = h.getsockname?.({}) ?? 0
      if (err !== 0) {
        h.close()
        throw new ListenerError(`Can't bind ${what}: ${errnoText(err)}`)
      }
      // --reuse-port: this socket, bound without SO_REUSEPORT and never
      // listening, reserves the address (and fixes port 0 to a real port)
      // without joining the workers' SO_REUSEPORT group: the kernel lets them
      // bind beside it (SO_REUSEADDR on both, this one not listening), even as
      // another user (-u), while a server already listening there still gets
      // EADDRINUSE here.
      return { bind, handle: h, placeholder: reusePort }
    }
    case 'unix': {
      const finalPath = path.resolve(bind.path)
      // libuv unlinks the path a pipe was bound to when the handle is closed,
      // which includes Node's cleanup at a natural exit. Binding a temporary
      // name and renaming it leaves the unlink to us, so a master handing the
      // socket over (USR2) does not delete the path its successor serves.
      // Tools like ss show the name bound, so keep it recognisable if it fits.
      const long = `${finalPath}.${process.pid}-${tempSeq}`
      const tempPath =
        Buffer.byteLength(long) < 108 ? long : path.join(path.dirname(finalPath), `.c${process.pid}-${tempSeq}`)
      tempSeq++
      fs.rmSync(tempPath, { force: true })
      const h = create(tempPath, -1, -1)
      if (typeof h === 'number') throw new ListenerError(`Can't bind ${what}: ${errnoText(h)}`)
      return { bind, handle: h, tempPath, finalPath }
    }
    case 'fd': {
      let stat: fs.Stats
      try {
        stat = fs.fstatSync(bind.fd)
      } catch (err) {
        throw new ListenerError(`Can't use ${what}: ${errorText(err)}`)
      }
      if (!stat.isSocket()) throw new ListenerError(`Can't use ${what}: not a socket`)
      const h = create(null, 0, undefined, bind.fd)
      if (typeof h === 'number')
        throw new ListenerError(`Can't use ${what}: not a TCP or unix stream socket (${errnoText(h)})`)
      return { bind, handle: h, placeholder: bind.reusePort === true }
    }
  }
}

// Binding needs an IP address, and Node has no synchronous resolver: names
// other than localhost (taken as 127.0.0.1) are looked up by the helper,
// like gunicorn takes the first getaddrinfo answer. Failures come back as
// "!CODE".
function resolveHosts(binds: Bind[]): Map<string, string> {
  const resolved = new Map<string, string>([['localhost', '127.0.0.1']])
  const names = [
    ...new Set(binds.flatMap((b) => (b.kind === 'tcp' && !net.isIP(b.host) && !resolved.has(b.host) ? [b.host] : []))),
  ]
  if (names.length === 0) return resolved
  const answers = runHelper('lookup', names, [])
  for (const [i, name] of names.entries()) resolved.set(name, answers[i] ?? '!no answer')
  return resolved
}

// An existing file at a unix path is replaced only if it is a socket nobody
// listens on (left by a crash); a live server's socket is never stolen.
function checkUnixPaths(binds: Bind[]): void {
  const existing: string[] = []
  for (const bind of binds) {
    if (bind.kind !== 'unix') continue
    let stat: fs.Stats
    try {
      stat = fs.lstatSync(bind.path)
    } catch {
      continue
    }
    if (!stat.isSocket())
      throw new ListenerError(`Can't bind unix:${bind.path}: a file that is not a socket is in the way`)
    existing.push(path.resolve(bind.path))
  }
  if (existing.length === 0) return
  const results = runHelper('probe', existing, [])
  existing.forEach((p, i) => {
    if (results[i] === 'live')
      throw new ListenerError(`Can't bind unix:${p}: EADDRINUSE (address already in use; another server listens on it)`)
  })
}

// Node cannot call listen(2) without also watching the fd in the same event
// loop, which would make the master accept. So a helper process inherits the
// fds, calls listen on each, and exits before its event loop ever runs: the
// sockets stay in LISTEN state through the master's fds, and no connection
// is accepted by anyone until a worker listens. It costs a whole Node start
// (~100 ms), so the master does not wait for it when it need not: with TCP
// addresses only (--bind's usual case) the helper runs beside the first
// worker's start. Whichever of them calls listen(2) first puts the socket in
// LISTEN for good (the master's fd keeps it there between workers), and
// bindOne has already caught "address already in use" (at bind time, through
// getsockname). A unix socket waits for it (its path appears only once it
// listens: a stale-socket probe must never find it refusing), and so does an
// inherited fd://N (in whatever state its giver left it, whose errors are
// reported here, in one line, before anything starts).
function listenElsewhere(opened: Opened[], backlog: number): Promise<void> {
  if (opened.length === 0) return Promise.resolve()
  const args = [String(backlog)]
  const fds = opened.map((o) => o.handle.fd)
  const check = (results: string[]): void =>
    opened.forEach((o, i) => {
      const r = results[i]
      if (r === 'ok') return
      const errno = Number(r)
      const why = Number.isInteger(errno) && errno < 0 ? errnoText(errno) : `no answer from the listen helper (${r})`
      throw new ListenerError(`Can't bind ${bindToString(o.bind)}: ${why}`)
    })
  if (opened.every((o) => o.bind.kind === 'tcp')) return runHelperAsync('listen', args, fds).then(check)
  check(runHelper('listen', args, fds))
  return Promise.resolve()
}

const HELPER = `
const net = require('node:net'), fs = require('node:fs')
const [mode, ...args] = process.argv.slice(1)
const res = []
const done = () => { fs.writeSync(1, JSON.stringify(res)); process.exit(0) }
if (mode === 'listen') {
  const n = Number(process.env.CORRAL_LISTEN_FDS)
  for (let i = 0; i < n; i++) {
    res[i] = 'ok'
    new net.Server().on('error', (e) => { res[i] = e.errno }).listen({ fd: 3 + i }, Number(args[0]))
  }
  // listen() reports errors on the tick queue; exit right after, before
  // the event loop could poll the fds and accept.
  process.nextTick(done)
} else if (mode === 'lookup') {
  let left = args.length
  args.forEach((h, i) => require('node:dns').lookup(h, (e, a) => { res[i] = e ? '!' + e.code : a; if (--left === 0) done() }))
} else {
  let left = args.length
  const settle = (i, r) => { if (res[i] === undefined) { res[i] = r; if (--left === 0) done() } }
  args.forEach((p, i) => {
    const s = net.connect(p)
    s.on('connect', () => { s.destroy(); settle(i, 'live') })
    s.on('error', (e) => settle(i, e.code === 'EAGAIN' ? 'live' : 'stale'))
    setTimeout(() => settle(i, 'live'), 1000).unref()
  })
}
`

type HelperMode = 'listen' | 'probe' | 'lookup'

function helperEnv(fds: number[]): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, CORRAL_LISTEN_FDS: String(fds.length) }
  // NODE_OPTIONS may preload code (--import, --require, --inspect) that has
  // no business running, let alone polling, in this helper.
  delete env.NODE_OPTIONS
  return env
}

const HELPER_TIMEOUT_MS = 10_000

function helperAnswer(mode: HelperMode, stdout: string, stderr: string, status: string | number | null): string[] {
  try {
    const parsed: unknown = JSON.parse(stdout)
    if (Array.isArray(parsed)) return parsed.map(String)
  } catch {
    // fall through
  }
  throw new ListenerError(`The ${mode} helper failed (status ${status}): ${stderr.trim()}`)
}

function runHelper(mode: HelperMode, args: string[], fds: number[]): string[] {
  const r = spawnSync(process.execPath, ['-e', HELPER, mode, ...args], {
    stdio: ['ignore', 'pipe', 'pipe', ...fds],
    env: helperEnv(fds),
    timeout: HELPER_TIMEOUT_MS,
    killSignal: 'SIGKILL',
  })
  if (r.error) throw new ListenerError(`Can't run the ${mode} helper (${process.execPath}): ${errorText(r.error)}`)
  return helperAnswer(mode, r.stdout.toString(), r.stderr.toString(), r.status ?? r.signal)
}

/** runHelper without blocking: the master's event loop goes on (and spawns workers) meanwhile. */
function runHelperAsync(mode: HelperMode, args: string[], fds: number[]): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['-e', HELPER, mode, ...args], {
      stdio: ['ignore', 'pipe', 'pipe', ...fds],
      env: helperEnv(fds),
      timeout: HELPER_TIMEOUT_MS,
      killSignal: 'SIGKILL',
    })
    let stdout = ''
    let stderr = ''
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk))
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk))
    child.on('error', (err) =>
      reject(new ListenerError(`Can't run the ${mode} helper (${process.execPath}): ${errorText(err)}`)),
    )
    child.on('close', (code, signal) => {
      try {
        resolve(helperAnswer(mode, stdout, stderr, code ?? signal))
      } catch (err) {
        reject(err)
      }
    })
  })
}

function toListener(o: Opened, listening: Promise<void>): Listener {
  let closed = false
  const reusePort = o.placeholder ? reusePortAddress(o) : undefined
  return {
    bind: o.bind,
    fd: o.handle.fd,
    address: addressOf(o),
    listening,
    ...(reusePort && { reusePort }),
    close({ unlink = true } = {}) {
      if (closed) return
      closed = true
      o.handle.close()
      if (unlink && o.finalPath) fs.rmSync(o.finalPath, { force: true })
    },
  }
}

function reusePortAddress(o: Opened): ReusePortAddress {
  const name: { address?: string; port?: number } = {}
  if (o.handle.getsockname?.(name) !== 0 || name.address === undefined || name.port === undefined) {
    throw new ListenerError(`Can't use ${bindToString(o.bind)} with --reuse-port: not a TCP socket`)
  }
  return { host: name.address, port: name.port }
}

function addressOf(o: Opened): string {
  if (o.finalPath) return `unix:${o.finalPath}`
  const name: { address?: string; port?: number } = {}
  // A pipe handle has no getsockname; an inherited unix socket is named by its fd.
  if (o.handle.getsockname?.(name) !== 0 || name.address === undefined || name.port === undefined)
    return bindToString(o.bind)
  // The real port when 0 was asked, as a URL (withScheme in src/http/tls.ts makes it https:// under TLS).
  return `http://${bindToString({ kind: 'tcp', host: name.address, port: name.port })}`
}

/**
 * Worker side: serve an inherited listening fd. Pass the master's backlog:
 * every listen(2) on the shared socket resets it, and `listen({ fd, backlog })`
 * silently ignores the option (only the positional argument counts for fds).
 */
export function listenOnFd(server: net.Server, fd: number, backlog: number = DEFAULT_BACKLOG): Promise<void> {
  return listening(server, () => server.listen({ fd }, backlog))
}

/**
 * Worker side, --reuse-port: a socket of this worker's own, bound with
 * SO_REUSEPORT to the address the master reserved; the kernel spreads new
 * connections over the workers' sockets. Closing it (drain, exit) resets the
 * connections still queued on it: see spec/listeners.md.
 */
export function listenReusePort(
  server: net.Server,
  { host, port }: ReusePortAddress,
  backlog: number = DEFAULT_BACKLOG,
): Promise<void> {
  return listening(server, () => server.listen({ host, port, reusePort: true, backlog }))
}

/** Calls `listen` and settles on the server's first 'listening' or 'error'. */
function listening(server: net.Server, listen: () => void): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void => {
      server.off('listening', onListening)
      reject(err)
    }
    const onListening = (): void => {
      server.off('error', onError)
      resolve()
    }
    server.once('error', onError).once('listening', onListening)
    listen()
  })
}
