// The PROXY protocol (HAProxy's, v1 text and v2 binary): a load balancer that
// does not speak HTTP (HAProxy in TCP mode, nginx's stream module, AWS NLB)
// tells the server who the client is in a header at the very start of the
// connection. With --proxy-protocol, a worker reads that header on each new
// connection from a peer in --proxy-allow-from before node:http sees a byte,
// and the client it names becomes the socket's remoteAddress and remotePort.
//
// As gunicorn's `auto` mode: v1, v2 or no header at all are accepted from
// allowed peers. A malformed header is answered 400 and the connection
// closed. Peers not in the list are handed to node:http as they are, so a
// PROXY header from them is a bad request (400) and the connection is closed.
// Spec: https://www.haproxy.org/download/2.9/doc/proxy-protocol.txt
import { isIPv4, isIPv6, type Socket } from 'node:net'
import type { Server } from 'node:http'
import { parseAllowList, proxiedPeer, setConnectionPeer, type AllowListValue, type Peer } from './forwarded.ts'

type Debug = (message: string) => void

export type ProxyHeader =
  /** Not enough bytes yet to tell. */
  | { readonly kind: 'more' }
  /** The connection does not start with a PROXY header. */
  | { readonly kind: 'none' }
  /** `length` bytes of header; `source` is absent for UNKNOWN, LOCAL and non-IP families. */
  | { readonly kind: 'header'; readonly version: 1 | 2; readonly length: number; readonly source?: Peer }
  | { readonly kind: 'invalid'; readonly reason: string }

const V1_PREFIX = Buffer.from('PROXY ', 'latin1')
const V2_SIGNATURE = Buffer.from('\r\n\r\n\0\r\nQUIT\n', 'latin1')
/** The longest v1 line, CRLF included (spec §2.1). */
const V1_MAX = 107
const PORT = /^(?:0|[1-9]\d{0,4})$/

/** How a buffer starts compared with a prefix: 'yes', 'no', or 'maybe' (too short to tell). */
function startsWith(buf: Buffer, prefix: Buffer): 'yes' | 'no' | 'maybe' {
  const n = Math.min(buf.length, prefix.length)
  if (buf.compare(prefix, 0, n, 0, n) !== 0) return 'no'
  return buf.length >= prefix.length ? 'yes' : 'maybe'
}

/** Reads a PROXY header at the start of `buf` (all the bytes received so far). */
export function parseProxyHeader(buf: Buffer): ProxyHeader {
  const v1 = startsWith(buf, V1_PREFIX)
  if (v1 === 'yes') return parseV1(buf)
  const v2 = startsWith(buf, V2_SIGNATURE)
  if (v2 === 'yes') return parseV2(buf)
  return v1 === 'maybe' || v2 === 'maybe' ? { kind: 'more' } : { kind: 'none' }
}

function parseV1(buf: Buffer): ProxyHeader {
  const end = buf.indexOf('\r\n', 0, 'latin1')
  if (end < 0 || end + 2 > V1_MAX)
    return buf.length >= V1_MAX || end >= 0
      ? invalid('v1 line longer than 107 bytes or without CRLF')
      : { kind: 'more' }
  const length = end + 2
  const parts = buf.toString('latin1', 0, end).split(' ')
  if (parts[1] === 'UNKNOWN') return { kind: 'header', version: 1, length }
  if (parts.length !== 6) return invalid(`v1 line has ${parts.length} fields, not 6`)
  const [, proto, src, dst, sport, dport] = parts as [string, string, string, string, string, string]
  const isIP = proto === 'TCP4' ? isIPv4 : proto === 'TCP6' ? isIPv6 : undefined
  if (!isIP) return invalid(`v1 protocol ${JSON.stringify(proto)} is not TCP4, TCP6 or UNKNOWN`)
  if (!isIP(src) || !isIP(dst))
    return invalid(`v1 addresses ${JSON.stringify(src)}, ${JSON.stringify(dst)} are not ${proto} addresses`)
  for (const port of [sport, dport])
    if (!PORT.test(port) || Number(port) > 65535) return invalid(`v1 port ${JSON.stringify(port)}`)
  return {
    kind: 'header',
    version: 1,
    length,
    source: { address: src, port: Number(sport), family: proto === 'TCP4' ? 'IPv4' : 'IPv6' },
  }
}

function parseV2(buf: Buffer): ProxyHeader {
  if (buf.length < 16) return { kind: 'more' }
  const versionCommand = buf[12]!
  if (versionCommand >> 4 !== 2) return invalid(`v2 version ${versionCommand >> 4}`)
  const command = versionCommand & 0x0f
  if (command > 1) return invalid(`v2 command ${command}`)
  const length = 16 + buf.readUInt16BE(14)
  if (buf.length < length) return { kind: 'more' }
  // LOCAL: the proxy's own connection (a health check): the peer is who it is.
  if (command === 0) return { kind: 'header', version: 2, length }
  const family = buf[13]! >> 4
  const body = length - 16
  if (family === 1) {
    if (body < 12) return invalid('v2 IPv4 addresses are cut short')
    const address = `${buf[16]}.${buf[17]}.${buf[18]}.${buf[19]}`
    return { kind: 'header', version: 2, length, source: { address, port: buf.readUInt16BE(24), family: 'IPv4' } }
  }
  if (family === 2) {
    if (body < 36) return invalid('v2 IPv6 addresses are cut short')
    return {
      kind: 'header',
      version: 2,
      length,
      source: { address: ipv6(buf.subarray(16, 32)), port: buf.readUInt16BE(48), family: 'IPv6' },
    }
  }
  // AF_UNSPEC, AF_UNIX: nothing to say about an IP client.
  if (family === 0 || family === 3) return { kind: 'header', version: 2, length }
  return invalid(`v2 address family ${family}`)
}

/** RFC 5952 text form of 16 bytes. */
function ipv6(b: Buffer): string {
  const groups: number[] = []
  for (let i = 0; i < 16; i += 2) groups.push(b.readUInt16BE(i))
  // The longest run of two or more zero groups becomes '::'.
  let best = -1
  let bestLen = 1
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++
      continue
    }
    let j = i
    while (j < 8 && groups[j] === 0) j++
    if (j - i > bestLen) {
      best = i
      bestLen = j - i
    }
    i = j
  }
  const hex = (g: number[]) => g.map((x) => x.toString(16)).join(':')
  if (best < 0) return hex(groups)
  return `${hex(groups.slice(0, best))}::${hex(groups.slice(best + bestLen))}`
}

function invalid(reason: string): ProxyHeader {
  return { kind: 'invalid', reason }
}

export interface ProxyProtocolSettings {
  readonly proxyProtocol: boolean
  readonly proxyAllowIps: AllowListValue
  /** Seconds a peer has to send the header (and the request head): --headers-timeout. */
  readonly headersTimeout: number
}

const EMPTY: Buffer = Buffer.alloc(0)
const BAD_REQUEST =
  'HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nContent-Length: 12\r\nConnection: close\r\n\r\nBad Request\n'

/**
 * Puts the PROXY header reader in front of node:http on this server: the
 * 'connection' listeners present now (node:http's own) run only once the
 * header is read, with the bytes after it. Call it right after
 * createServer, before anything else listens for 'connection'.
 */
export function installProxyProtocol(server: Server, settings: ProxyProtocolSettings, debug?: Debug): void {
  if (!settings.proxyProtocol) return
  const allow = parseAllowList(settings.proxyAllowIps)
  const downstream = server.listeners('connection') as ((socket: Socket) => void)[]
  server.removeAllListeners('connection')
  const timeoutMs = settings.headersTimeout * 1000
  // node:https and HTTP/2 servers are tls.Servers: the PROXY header comes
  // before the TLS handshake.
  const tls = typeof (server as { addContext?: unknown }).addContext === 'function'
  const deliver = (socket: Socket, rest: Buffer) => {
    // What came after the header goes back into the socket's buffer. node:http
    // takes it with the 'data' listener it adds (on the next tick, before any
    // new bytes); node:tls reads what is buffered (its initRead, also on the
    // next tick), so for it the socket must stop flowing first, or the bytes
    // would be emitted to no listener and lost.
    if (rest.length > 0) {
      if (tls) socket.pause()
      socket.unshift(rest)
    }
    for (const listener of downstream) listener.call(server, socket)
  }
  // The TLS socket the app sees wraps the raw one: it gets the same client.
  if (tls) {
    server.on('secureConnection', (socket: Socket & { _parent?: Socket }) => {
      const peer = socket._parent && proxiedPeer(socket._parent)
      if (peer) setConnectionPeer(socket, peer)
    })
  }
  server.on('connection', (socket: Socket) => {
    if (!allow.allows(socket.remoteAddress)) return deliver(socket, EMPTY)
    let received: Buffer = EMPTY
    const timer = timeoutMs > 0 ? setTimeout(() => fail('no PROXY header or request in time'), timeoutMs) : undefined
    const done = () => {
      clearTimeout(timer)
      socket.off('data', onData)
      socket.off('error', onError)
      socket.off('close', done)
    }
    // A malformed header is answered 400 (gunicorn's InvalidProxyLine); silence is just closed.
    const fail = (reason: string, answer = false) => {
      done()
      // Whatever the peer does now (EPIPE, ECONNRESET) must not become an uncaught error.
      socket.on('error', () => socket.destroy())
      debug?.(`Invalid PROXY header from ip=${socket.remoteAddress ?? 'a unix socket peer'}: ${reason}`)
      if (!answer) return void socket.destroy()
      socket.end(BAD_REQUEST)
      setTimeout(() => socket.destroy(), 1000).unref()
    }
    const onError = () => done()
    const onData = (chunk: Buffer) => {
      received = received.length === 0 ? chunk : Buffer.concat([received, chunk])
      const header = parseProxyHeader(received)
      if (header.kind === 'more') return
      if (header.kind === 'invalid') return fail(header.reason, true)
      done()
      if (header.kind === 'none') return deliver(socket, received)
      if (header.source) setConnectionPeer(socket, header.source)
      deliver(socket, received.subarray(header.length))
    }
    socket.on('data', onData)
    socket.on('error', onError)
    socket.on('close', done)
  })
}
