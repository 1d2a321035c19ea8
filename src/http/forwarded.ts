// Proxies in front of a worker: which peers may say who the client is, and
// what a request from such a peer says (spec/proxies.md).
//
// - --forwarded-allow-ips: peers whose X-Forwarded-For and secure-scheme
//   headers are believed. From them, the client address becomes the socket's
//   remoteAddress (so the access log's %(h)s, Hono's getConnInfo, Express's
//   req.ip and a plain handler all see the client) and an https scheme makes
//   socket.encrypted true (so a fetch app's request.url, Express's
//   req.protocol and Koa's ctx.protocol say https). From any other peer those
//   headers are removed before the app runs.
// - --secure-scheme-headers: which header, with which value, means https.
// - The per-socket address override is shared with the PROXY protocol
//   (src/http/proxy-protocol.ts), which sets it once per connection.
//
// Cost per request: one pass over the raw header names looking at their first
// letter; nothing else unless a proxy header is there.
import { BlockList, isIP, type Socket } from 'node:net'
import type { IncomingMessage, ServerResponse } from 'node:http'

// Not an ESM import of node:http: see src/http/app-server.ts.
const { STATUS_CODES } = process.getBuiltinModule('node:http')

type Handler = (req: IncomingMessage, res: ServerResponse) => void
type Debug = (message: string) => void

// ---------------------------------------------------------------------------
// Allow lists: --forwarded-allow-ips, --proxy-allow-from

/** A comma-separated string (gunicorn's form) or a list of entries (a config file may use either). */
export type AllowListValue = string | readonly string[]

export interface AllowList {
  /** `*` was listed: every peer. */
  readonly any: boolean
  /**
   * Whether a peer is allowed. A connection without an IP address (a unix
   * socket) always is, as in gunicorn: who may connect is the socket file's
   * permissions' business.
   */
  allows(address: string | undefined): boolean
  /** Whether an address is listed (ignoring `*`): used to skip proxies in X-Forwarded-For. */
  lists(address: string): boolean
}

function allowListEntries(value: AllowListValue): string[] {
  const parts = typeof value === 'string' ? value.split(',') : value.flatMap((v) => v.split(','))
  return parts.map((s) => s.trim()).filter((s) => s !== '')
}

interface Entry {
  address: string
  family: 'ipv4' | 'ipv6'
  prefix: number | undefined
}

function parseEntry(text: string): Entry | string {
  const slash = text.indexOf('/')
  const address = slash < 0 ? text : text.slice(0, slash)
  const version = isIP(address)
  if (version === 0)
    return `${JSON.stringify(text)} is not an IP address or network (expected e.g. 10.0.0.1, ::1, 10.0.0.0/8 or *)`
  if (slash < 0) return { address, family: version === 4 ? 'ipv4' : 'ipv6', prefix: undefined }
  const bits = text.slice(slash + 1)
  const max = version === 4 ? 32 : 128
  if (!/^\d{1,3}$/.test(bits) || Number(bits) > max)
    return `${JSON.stringify(text)}: the prefix length must be 0 to ${max}`
  return { address, family: version === 4 ? 'ipv4' : 'ipv6', prefix: Number(bits) }
}

/** Why a value is not an allow list, or undefined when it is one. */
export function allowListProblem(value: AllowListValue): string | undefined {
  for (const e of allowListEntries(value)) {
    if (e === '*') continue
    const entry = parseEntry(e)
    if (typeof entry === 'string') return entry
  }
  return undefined
}

export function parseAllowList(value: AllowListValue): AllowList {
  const entries = allowListEntries(value)
  const any = entries.includes('*')
  const list = new BlockList()
  for (const e of entries) {
    if (e === '*') continue
    const entry = parseEntry(e)
    if (typeof entry === 'string') throw new Error(entry)
    if (entry.prefix === undefined) list.addAddress(entry.address, entry.family)
    else list.addSubnet(entry.address, entry.prefix, entry.family)
  }
  // BlockList.check costs ~200 ns; a server sees the same few peers.
  const cache = new Map<string, boolean>()
  const lists = (address: string): boolean => {
    let hit = cache.get(address)
    if (hit === undefined) {
      const version = isIP(address)
      hit = version !== 0 && list.check(address, version === 4 ? 'ipv4' : 'ipv6')
      if (cache.size >= 1024) cache.clear()
      cache.set(address, hit)
    }
    return hit
  }
  return { any, lists, allows: (address) => any || address === undefined || lists(address) }
}

// ---------------------------------------------------------------------------
// --secure-scheme-headers

/** `NAME=VALUE,NAME=VALUE` (gunicorn's CLI-less setting, given a flag here) or, in a config file, `{ NAME: VALUE }`. */
export type SecureSchemeHeadersValue = string | { readonly [name: string]: string }

export const DEFAULT_SECURE_SCHEME_HEADERS = 'X-FORWARDED-PROTOCOL=ssl,X-FORWARDED-PROTO=https,X-FORWARDED-SSL=on'

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/

/** Lower-cased header name → lower-cased value meaning https; or the reason the value is not valid. */
function secureSchemeMap(value: SecureSchemeHeadersValue): Map<string, string> | string {
  const pairs: [string, string][] = []
  if (typeof value === 'string') {
    for (const item of value.split(',')) {
      const text = item.trim()
      if (text === '') continue
      const eq = text.indexOf('=')
      if (eq < 0) return `${JSON.stringify(text)}: expected NAME=VALUE`
      pairs.push([text.slice(0, eq).trim(), text.slice(eq + 1).trim()])
    }
  } else pairs.push(...Object.entries(value).map(([k, v]) => [k, String(v)] as [string, string]))
  const map = new Map<string, string>()
  for (const [name, v] of pairs) {
    if (!TOKEN.test(name)) return `${JSON.stringify(name)} is not a header name`
    if (v === '') return `${name}: the value meaning https is empty`
    map.set(name.toLowerCase(), v.toLowerCase())
  }
  return map
}

export function secureSchemeHeadersProblem(value: SecureSchemeHeadersValue): string | undefined {
  const m = secureSchemeMap(value)
  return typeof m === 'string' ? m : undefined
}

export function parseSecureSchemeHeaders(value: SecureSchemeHeadersValue): Map<string, string> {
  const m = secureSchemeMap(value)
  if (typeof m === 'string') throw new Error(m)
  return m
}

// ---------------------------------------------------------------------------
// The socket's idea of who is on the other end

export interface Peer {
  readonly address: string | undefined
  readonly port: number | undefined
  readonly family: string | undefined
}

const kPeer = Symbol('corral.peer')
const kClient = Symbol('corral.client')
const kTrusted = Symbol('corral.trusted')
const kScheme = Symbol('corral.scheme')
const kProxied = Symbol('corral.proxied')

interface Tracked extends Socket {
  /** Who the connection is from: the TCP peer, or the client a PROXY header named. */
  [kPeer]?: Peer
  /** Who the current request is from (X-Forwarded-For), when an override is installed. */
  [kClient]?: Peer
  [kTrusted]?: boolean
  /** A scheme header set socket.encrypted for the current request. */
  [kScheme]?: boolean
  /** kPeer came from a PROXY header. */
  [kProxied]?: boolean
  encrypted?: boolean
}

// Shared accessors (no closure per socket) that shadow net.Socket's
// prototype getters on the sockets that need it.
function remoteAddress(this: Tracked) {
  return this[kClient]?.address
}
function remotePort(this: Tracked) {
  return this[kClient]?.port
}
function remoteFamily(this: Tracked) {
  return this[kClient]?.family
}
const ACCESSORS: PropertyDescriptorMap = {
  remoteAddress: { get: remoteAddress, configurable: true },
  remotePort: { get: remotePort, configurable: true },
  remoteFamily: { get: remoteFamily, configurable: true },
}

/** The connection's own peer (after any PROXY header), whatever a request said since. */
function connectionPeer(socket: Socket): Peer {
  const s = socket as Tracked
  return s[kPeer] ?? { address: socket.remoteAddress, port: socket.remotePort, family: socket.remoteFamily }
}

function setClient(socket: Tracked, client: Peer): void {
  if (socket[kClient] === undefined) {
    socket[kPeer] ??= { address: socket.remoteAddress, port: socket.remotePort, family: socket.remoteFamily }
    Object.defineProperties(socket, ACCESSORS)
  }
  socket[kClient] = client
}

/** The client a PROXY header named for this socket, if any. */
export function proxiedPeer(socket: Socket): Peer | undefined {
  const s = socket as Tracked
  return s[kProxied] ? s[kPeer] : undefined
}

/** The PROXY protocol named the client: it is the connection's peer from now on. */
export function setConnectionPeer(socket: Socket, peer: Peer): void {
  const s = socket as Tracked
  setClient(s, peer)
  s[kPeer] = peer
  s[kProxied] = true
}

// ---------------------------------------------------------------------------
// The request wrapper

export interface ForwardedSettings {
  readonly forwardedAllowIps: AllowListValue
  readonly secureSchemeHeaders: SecureSchemeHeadersValue
}

/**
 * Headers only a proxy has any business sending, besides the secure-scheme
 * ones: removed from requests of peers not in --forwarded-allow-ips.
 */
const PROXY_HEADERS = ['x-forwarded-for', 'x-forwarded-host', 'x-forwarded-port', 'x-real-ip', 'forwarded'] as const

const isTls = (socket: Socket) => typeof (socket as { getPeerCertificate?: unknown }).getPeerCertificate === 'function'

/**
 * Wraps the handler: from trusted peers, X-Forwarded-For and the secure
 * scheme headers set the client and the scheme; from others, proxy headers
 * are removed. Contradicting scheme headers from a trusted peer are a 400,
 * as in gunicorn.
 */
export function forwardedRequests(handler: Handler, settings: ForwardedSettings, debug?: Debug): Handler {
  const allow = parseAllowList(settings.forwardedAllowIps)
  const secure = parseSecureSchemeHeaders(settings.secureSchemeHeaders)
  const watched = new Set<string>([...PROXY_HEADERS, ...secure.keys()])
  // Most header names rule themselves out on their first byte; the others
  // are looked up by their exact spelling (a client or proxy uses the same
  // few), lower-cased only the first time.
  const firstBytes = new Uint8Array(128)
  for (const name of watched) {
    firstBytes[name.charCodeAt(0)] = 1
    firstBytes[name.toUpperCase().charCodeAt(0)] = 1
  }
  const spellings = new Map<string, string | null>()
  /** The lower-cased name when it is a watched one. */
  const watchedName = (name: string): string | undefined => {
    if (firstBytes[name.charCodeAt(0)] !== 1) return undefined
    let lower = spellings.get(name)
    if (lower === undefined) {
      const l = name.toLowerCase()
      lower = watched.has(l) ? l : null
      if (spellings.size < 256) spellings.set(name, lower)
    }
    return lower ?? undefined
  }
  // X-Forwarded-For values repeat (a client's requests, a proxy's keep-alive connection).
  const clients = new Map<string, Peer | null>()
  const clientFor = (forwardedFor: string): Peer | undefined => {
    let client = clients.get(forwardedFor)
    if (client === undefined) {
      client = clientOf(forwardedFor, allow) ?? null
      if (clients.size >= 1024) clients.clear()
      clients.set(forwardedFor, client)
    }
    return client ?? undefined
  }

  const trusted = (socket: Tracked): boolean => {
    let t = socket[kTrusted]
    if (t === undefined) t = socket[kTrusted] = allow.allows(connectionPeer(socket).address)
    return t
  }

  return function forwarded(req, res) {
    const raw = req.rawHeaders
    const n = raw.length
    let first = -1
    for (let i = 0; i < n; i += 2) {
      const name = raw[i]!
      if (firstBytes[name.charCodeAt(0)] === 1 && watchedName(name) !== undefined) {
        first = i
        break
      }
    }
    const socket = req.socket as Tracked
    if (first < 0) {
      // A trusted proxy's earlier request on this connection may have named another client.
      if (socket[kClient] !== undefined || socket[kScheme]) restore(socket)
      return handler(req, res)
    }
    // An HTTP/2 stream's socket is shared by the whole session: only strip.
    const h2 = 'stream' in req
    if (!trusted(socket)) {
      strip(req, first, watchedName, debug)
      return handler(req, res)
    }
    if (h2) return handler(req, res)
    let forwardedFor: string | undefined
    let https: boolean | undefined
    for (let i = first; i < n; i += 2) {
      const lower = watchedName(raw[i]!)
      if (lower === undefined) continue
      const value = raw[i + 1]!
      if (lower === 'x-forwarded-for') forwardedFor = forwardedFor === undefined ? value : `${forwardedFor},${value}`
      const expected = secure.get(lower)
      if (expected !== undefined) {
        const says = value === expected || value.trim().toLowerCase() === expected
        if (https !== undefined && https !== says) return contradicting(req, res, debug)
        https = says
      }
    }
    const client = forwardedFor === undefined ? undefined : clientFor(forwardedFor)
    if (client !== undefined) setClient(socket, client)
    else if (socket[kClient] !== undefined) socket[kClient] = socket[kPeer]!
    if (https !== undefined && !isTls(socket)) {
      socket.encrypted = https
      socket[kScheme] = true
    } else if (socket[kScheme]) restoreScheme(socket)
    handler(req, res)
  }
}

function restore(socket: Tracked): void {
  if (socket[kClient] !== undefined) socket[kClient] = socket[kPeer]!
  if (socket[kScheme]) restoreScheme(socket)
}

function restoreScheme(socket: Tracked): void {
  socket.encrypted = undefined
  socket[kScheme] = false
}

/**
 * The client in an X-Forwarded-For list: read from the right (what the
 * nearest proxy saw), skipping listed proxies; with `*`, the rightmost entry
 * (one proxy, whatever its address: the entries left of it are whatever the
 * client sent). Undefined when the entry found is not an IP address.
 */
export function clientOf(forwardedFor: string, allow: AllowList): Peer | undefined {
  const parts = forwardedFor.split(',')
  for (let i = parts.length - 1; i >= 0; i--) {
    const address = cleanAddress(parts[i]!)
    if (address === undefined) return undefined
    if (i === 0 || allow.any || !allow.lists(address)) {
      return { address, port: undefined, family: address.includes(':') ? 'IPv6' : 'IPv4' }
    }
  }
  return undefined
}

/** `1.2.3.4`, `1.2.3.4:5678`, `::1`, `[::1]`, `[::1]:80` → the address; anything else → undefined. */
function cleanAddress(text: string): string | undefined {
  let a = text.trim()
  if (a.startsWith('[')) {
    const close = a.indexOf(']')
    if (close < 0) return undefined
    a = a.slice(1, close)
  } else if (a.indexOf(':') > 0 && a.indexOf(':') === a.lastIndexOf(':')) a = a.slice(0, a.indexOf(':'))
  return isIP(a) === 0 ? undefined : a.toLowerCase()
}

/**
 * Removes the watched fields from an untrusted request. node:http builds
 * req.headers and req.headersDistinct lazily from rawHeaders and a count of
 * its own, so both are built from the original first, then the fields are
 * taken out of all three.
 */
function strip(
  req: IncomingMessage,
  first: number,
  watchedName: (name: string) => string | undefined,
  debug: Debug | undefined,
): void {
  const headers = req.headers as Record<string, unknown>
  // (An HTTP/2 compat request has no headersDistinct.)
  const distinct = req.headersDistinct as Record<string, unknown> | undefined
  const raw = req.rawHeaders
  let w = first
  const removed: string[] = []
  for (let r = first; r < raw.length; r += 2) {
    const name = raw[r]!
    const lower = watchedName(name)
    if (lower !== undefined) {
      delete headers[lower]
      if (distinct) delete distinct[lower]
      removed.push(name)
      continue
    }
    raw[w] = name
    raw[w + 1] = raw[r + 1]!
    w += 2
  }
  raw.length = w
  debug?.(
    `Removed ${removed.join(', ')} from a request of ${req.socket.remoteAddress ?? 'a unix socket peer'} (not in --forwarded-allow-ips)`,
  )
}

function contradicting(req: IncomingMessage, res: ServerResponse, debug: Debug | undefined): void {
  debug?.(`Invalid request from ip=${req.socket.remoteAddress}: contradictory scheme headers`)
  const body = `${STATUS_CODES[400]}\n`
  res.writeHead(400, { 'content-type': 'text/plain', 'content-length': body.length, connection: 'close' })
  res.end(body)
}
