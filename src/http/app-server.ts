// Apps that start their own server (spec/apps.md, "Apps that call listen()").
//
// Before a worker imports the app, listen() of every http, https and http2
// server is caught: nothing is bound. The worker's chart decides what becomes
// of the server (machines/worker.ts): the first one is served from corral's
// inherited listeners, each request and upgrade handed to the server's own
// listeners; any later one is left idle. Either way the app sees what it
// would see on a server of its own: 'listening' (and its callback), a
// server.address(), `listening` true, and close() ending in 'close'.
import type { IncomingMessage, ServerResponse } from 'node:http'
import net from 'node:net'
import type { Duplex } from 'node:stream'

// node:http through getBuiltinModule, never an ESM import: that would build
// a namespace reading every export, whose lazy getters load undici
// (~80 ms of CPU) in every worker and master (spec/architecture.md).
const http = process.getBuiltinModule('node:http')

/** What the app asked listen() for, as far as it says: a port (and host), a unix path, or a handle. */
export interface ListenAsk {
  readonly port?: number
  readonly host?: string
  readonly path?: string
  /** listen({ fd }) or listen(handle): something corral does not name. */
  readonly handle?: true
  /** An https or http2 secure server: its own certificates are not used. */
  readonly tls?: true
}

/** An app's server, caught listening (or exported): what corral serves it with, and how it is told. */
export interface AppServer {
  readonly server: net.Server
  readonly asked: ListenAsk | undefined
  /** Served: 'listening' now fires, and address() answers with `address`. */
  attach(address: net.AddressInfo | string | null): void
  /** Not served (a second server): 'listening' fires, address() answers with what it asked. */
  leaveIdle(): void
  /** corral stopped serving it (the worker drained or closed): 'close' fires. */
  closed(): void
  /** node:http's 'request', handed to the server's own listeners. */
  readonly request: (req: IncomingMessage, res: ServerResponse) => void
  /** node:http's 'upgrade', handed on, when the server has an 'upgrade' listener now or later. */
  onUpgradeListener(install: (listener: (req: IncomingMessage, socket: Duplex, head: Buffer) => void) => void): void
  /**
   * The worker is draining: each WebSocket still open on a forwarded upgrade
   * is sent a close frame, 1001 (going away), so its client reconnects to a
   * fresh worker instead of holding this one until --graceful-timeout (as
   * corral does for an exported ws server: src/http/websocket-upgrade.ts).
   */
  drainUpgrades(): void
}

/**
 * A WebSocket close frame from a server (unmasked, FIN): code 1001, "server
 * going away". Written between the app's frames (each is one write), so the
 * stream stays well-formed; the client answers it, and the app's WebSocket
 * library completes the closing handshake.
 */
const GOING_AWAY = (() => {
  const reason = Buffer.from('server going away')
  return Buffer.concat([Buffer.from([0x88, 2 + reason.length, 0x03, 0xe9]), reason])
})()

/** corral's address as the master logs it (`http://127.0.0.1:8000`, `unix:/path`), as server.address() gives it. */
export function addressInfo(address: string | undefined): net.AddressInfo | string | undefined {
  if (address === undefined) return undefined
  if (address.startsWith('unix:')) return address.slice('unix:'.length)
  const m = /^https?:\/\/(?:\[(.+)\]|([^:/]+)):(\d+)$/.exec(address)
  if (!m) return undefined
  const host = m[1] ?? m[2]!
  return { address: host, family: host.includes(':') ? 'IPv6' : 'IPv4', port: Number(m[3]) }
}

/** `port 3000`, `127.0.0.1:3000`, `unix:/run/app.sock`, `an ephemeral port`, `a handle`. */
function describeAsk(asked: ListenAsk): string {
  if (asked.path !== undefined) return `unix:${asked.path}`
  if (asked.handle) return 'a socket handle'
  if (!asked.port) return asked.host === undefined ? 'an ephemeral port' : `${asked.host}, ephemeral port`
  if (asked.host === undefined) return `port ${asked.port}`
  return asked.host.includes(':') ? `[${asked.host}]:${asked.port}` : `${asked.host}:${asked.port}`
}

/** listen()'s arguments as node:net reads them (port, host, backlog, callback | options | path | handle). */
function askOf(args: unknown[]): ListenAsk {
  const first = args[0]
  const second = args[1]
  const portOf = (v: unknown) => (v === undefined || v === null ? 0 : Number(v))
  if (typeof first === 'object' && first !== null) {
    const o = first as { port?: unknown; host?: unknown; path?: unknown; fd?: unknown; _handle?: unknown }
    if (typeof o.path === 'string') return { path: o.path }
    if (o.fd !== undefined || o._handle !== undefined) return { handle: true }
    return { port: portOf(o.port), ...(typeof o.host === 'string' && { host: o.host }) }
  }
  if (typeof first === 'string' && !/^\d+$/.test(first)) return { path: first }
  if (typeof first === 'number' || typeof first === 'string' || first === undefined || typeof first === 'function')
    return {
      port: typeof first === 'function' ? 0 : portOf(first),
      ...(typeof second === 'string' && { host: second }),
    }
  return { handle: true }
}

/** An http, https or http2 server: one with a request listener to hand requests to. */
function isWebServer(server: net.Server): boolean {
  if (server instanceof http.Server) return true
  // https: loaded only on this rare path (most apps are node:http, and most never call listen()).
  if (server instanceof process.getBuiltinModule('node:https').Server) return true
  // http2's server classes are not exported; both have updateSettings().
  return typeof (server as unknown as { updateSettings?: unknown }).updateSettings === 'function'
}

interface Overridable {
  address(): net.AddressInfo | string | null
  close(callback?: (err?: Error) => void): unknown
}

/**
 * Wraps a server the app made, so it can be served (or left idle) in place of
 * listening. `provisional`: what address() answers between the app's
 * listen() and the worker's answer (corral's address, as the master gave it).
 */
export function appServer(
  server: net.Server,
  asked: ListenAsk | undefined,
  provisional?: net.AddressInfo | string,
): AppServer {
  let state: 'caught' | 'listening' | 'closed' = 'caught'
  let address: net.AddressInfo | string | null = null
  const target = server as unknown as Overridable
  // Instance properties over node:net's prototype ones, which read the (absent) handle.
  // As on a server of its own, where listen() on a port binds at once and 'listening' follows:
  // right after listen(), address() already answers (with where corral serves, when known).
  const caught = () => state === 'caught' && asked !== undefined
  Object.defineProperty(server, 'listening', { configurable: true, get: () => state === 'listening' || caught() })
  target.address = () => (state === 'listening' ? address : caught() ? (provisional ?? null) : null)
  target.close = (callback) => {
    if (state !== 'listening') {
      const err = Object.assign(new Error('Server is not running.'), { code: 'ERR_SERVER_NOT_RUNNING' })
      if (callback) process.nextTick(callback, err)
      return server
    }
    if (callback) server.once('close', () => callback())
    // The worker decides (machines/worker.ts: APP_CLOSED); closed() is its answer.
    server.emit('corral:close')
    return server
  }
  /** Sockets of WebSocket upgrades handed to the app's server, while open. */
  const webSockets = new Set<Duplex>()
  const listening = (at: net.AddressInfo | string | null) => {
    address = at
    state = 'listening'
    process.nextTick(() => server.emit('listening'))
  }
  return {
    server,
    asked,
    attach: listening,
    leaveIdle: () => {
      const ask = asked ?? {}
      listening(
        ask.path ??
          (ask.handle
            ? null
            : { address: ask.host ?? '::', family: ask.host?.includes('.') ? 'IPv4' : 'IPv6', port: ask.port ?? 0 }),
      )
    },
    drainUpgrades: () => {
      for (const socket of webSockets) if (socket.writable) socket.write(GOING_AWAY)
      webSockets.clear()
    },
    closed: () => {
      if (state === 'closed') return
      state = 'closed'
      process.nextTick(() => server.emit('close'))
    },
    request: (req, res) => server.emit('request', req, res),
    onUpgradeListener(install) {
      const forward = (req: IncomingMessage, socket: Duplex, head: Buffer) => {
        if (/^websocket$/i.test(req.headers.upgrade ?? '')) {
          webSockets.add(socket)
          socket.once('close', () => webSockets.delete(socket))
        }
        server.emit('upgrade', req, socket, head)
      }
      if (server.listenerCount('upgrade') > 0) return install(forward)
      const watch = (event: string | symbol) => {
        if (event !== 'upgrade') return
        server.off('newListener', watch)
        install(forward)
      }
      server.on('newListener', watch)
    },
  }
}

/**
 * corral's own servers (a worker's, the master's metrics and inspector
 * servers): registered before they listen, so that catchListen lets them bind.
 */
export const corralServers = new WeakSet<net.Server>()

/**
 * From now on, listen() of an http, https or http2 server that is not one of
 * corralServers binds nothing: `caught` is told instead (synchronously, inside
 * the app's call). Other servers (a raw net.Server) listen as usual.
 */
export function catchListen(caught: (server: net.Server, asked: ListenAsk) => void): void {
  const listen = net.Server.prototype.listen
  net.Server.prototype.listen = function (this: net.Server, ...args: unknown[]) {
    if (corralServers.has(this) || !isWebServer(this)) return listen.apply(this, args as Parameters<typeof listen>)
    const callback = args.findLast((a) => typeof a === 'function') as (() => void) | undefined
    if (callback) this.once('listening', callback)
    // tls.Server's own method: https and http2 secure servers have it.
    const tls = typeof (this as unknown as { addContext?: unknown }).addContext === 'function'
    caught(this, { ...askOf(args), ...(tls && { tls: true as const }) })
    return this
  } as typeof listen
}

/**
 * The master's one line about an app's own listen() (said once, not once per
 * worker): what it asked for, where corral serves it instead, and the -b that
 * would keep what it asked; or, for a later server, that it is not served.
 */
export function listenNotice(asked: ListenAsk, served: boolean, addresses: readonly string[]): string {
  const what = describeAsk(asked)
  if (!served)
    return `The app's listen() of a second server (${what}) binds nothing: corral serves the app's first server only, on its binds; serve that one from a process of its own, or route it in the main app (spec/apps.md)`
  const where = addresses.join(', ')
  const keep = keepingBind(asked)
  const same = addresses.some((a) => a.replace(/^https?:\/\//, '') === keep)
  // An https or http2 secure server's certificates stay unused: TLS is corral's (--certfile).
  const tls =
    asked.tls && !addresses.some((a) => a.startsWith('https:'))
      ? '; its TLS certificates are not used (plain HTTP): give corral --certfile and --keyfile'
      : ''
  if (same || keep === undefined)
    return `The app's own listen() (${what}) is served at ${where}, corral's bind${tls} (spec/apps.md)`
  return `The app's own listen() (${what}) binds nothing: corral serves the app at ${where}, its bind; -b ${keep} keeps the app's address${tls} (spec/apps.md)`
}

/** The -b that binds what the app asked for, when it named something corral can bind. */
function keepingBind(asked: ListenAsk): string | undefined {
  if (asked.path !== undefined) return `unix:${asked.path}`
  if (asked.handle || !asked.port) return undefined
  const host = asked.host === undefined || asked.host === '::' ? '0.0.0.0' : asked.host
  return `${host.includes(':') ? `[${host}]` : host}:${asked.port}`
}
