// What a worker accepts from a client, beyond what node:http's parser
// (llhttp, strict) already refuses: gunicorn's request limits, the
// request-smuggling shapes llhttp lets through, and the slow-client timeouts.
// See spec/http-conformance.md for each rule and its reason.
//
// Three hooks, all set up once per server:
// - httpServerOptions(): node:http options (head size, timeouts);
// - guardRequests() (and guardUpgrades() for 'upgrade' listeners): wraps the
//   handler with checks that read only what node:http has already parsed
//   (req.url, req.rawHeaders): one pass over the header names and lengths,
//   no allocation, before the app runs;
// - guardServer(): the header-count cap and the 'clientError' answer.
import type { IncomingMessage, Server, ServerOptions, ServerResponse } from 'node:http'
import type { Server as HttpsServer } from 'node:https'
import type { Socket } from 'node:net'
import type { Duplex } from 'node:stream'

// Not an ESM import of node:http: see src/http/app-server.ts.
const { STATUS_CODES } = process.getBuiltinModule('node:http')

export interface HttpGuardSettings {
  /** Max request-line length in bytes, without CRLF; 0 = no limit of its own. */
  readonly limitRequestLine: number
  /** Max number of header fields; 0 = gunicorn's maximum, 32768. */
  readonly limitRequestFields: number
  /** Max size of one header field line, `Name: value` and CRLF; 0 = no limit of its own. */
  readonly limitRequestFieldSize: number
  /** Seconds a client has to send the request head; 0 disables. */
  readonly headersTimeout: number
  /** Seconds a client has to send the whole request, body included; 0 disables. */
  readonly requestTimeout: number
}

type Handler = (req: IncomingMessage, res: ServerResponse) => void
type Debug = (message: string) => void

// gunicorn's ceilings: the request-line and field-size values it falls back
// to, and its maximum number of fields (also what 0 fields means).
const GUNICORN_LINE = 8190
const GUNICORN_FIELD_SIZE = 8190
const GUNICORN_MAX_FIELDS = 32768
// "GET" + " " + url + " " + "HTTP/1.1": the two spaces and the version.
const LINE_OVERHEAD = 10

const fieldsLimit = (s: HttpGuardSettings) => (s.limitRequestFields > 0 ? s.limitRequestFields : GUNICORN_MAX_FIELDS)

/**
 * The head as a whole is bounded the way gunicorn bounds its header buffer:
 * the request line plus `fields × (field size + CRLF)`. Node counts the URL,
 * the names and the values against maxHeaderSize, so this is never tighter
 * than the per-line and per-field limits, which guardRequests() applies.
 */
export function maxHeaderSize(s: HttpGuardSettings): number {
  const line = s.limitRequestLine > 0 ? s.limitRequestLine : GUNICORN_LINE
  const field = s.limitRequestFieldSize > 0 ? s.limitRequestFieldSize : GUNICORN_FIELD_SIZE
  return Math.min(line + fieldsLimit(s) * (field + 2) + 4, 2 ** 31 - 1)
}

/** node:http options for the settings; spread into createServer's options. */
export function httpServerOptions(s: HttpGuardSettings): ServerOptions {
  const request = s.requestTimeout * 1000
  // node:http refuses headersTimeout > requestTimeout; the head is part of the request.
  const headers = request > 0 ? Math.min(s.headersTimeout * 1000, request) : s.headersTimeout * 1000
  const shortest = Math.min(...[headers, request].filter((t) => t > 0))
  return {
    maxHeaderSize: maxHeaderSize(s),
    // Node's defaults, stated so that nothing loosens them by accident.
    requireHostHeader: true,
    insecureHTTPParser: false,
    joinDuplicateHeaders: false,
    headersTimeout: headers,
    requestTimeout: request,
    // How often node:http looks for expired connections (its default is 30 s,
    // which would let a slow client outlive its timeout by that much).
    connectionsCheckingInterval: Number.isFinite(shortest) ? Math.min(1000, Math.max(100, shortest / 4)) : 30_000,
  }
}

/** Why a request is refused: the status it is answered with, and the reason logged. */
interface Refusal {
  readonly status: number
  readonly reason: string
}

const refuse = (status: number, reason: string): Refusal => ({ status, reason })

/**
 * The checks, compiled once for the settings: undefined for a request the app
 * may have, else why not. Requests that break a limit, or have a shape that
 * node:http accepts but that can desynchronise a proxy and the app, are
 * refused (414, 431, 400, 505). Allocates only when refusing.
 */
function requestChecker(s: HttpGuardSettings): (req: IncomingMessage) => Refusal | undefined {
  const line = s.limitRequestLine
  const fields = fieldsLimit(s)
  const rawLimit = 2 * fields
  const fieldSize = s.limitRequestFieldSize
  // The last Host value found valid: a server mostly sees the same few, and a
  // string comparison is cheaper than the pattern.
  let knownHost = ''
  return function check(req) {
    if (req.httpVersionMajor !== 1) {
      // An HTTP/2 stream (compat API) has its own framing and limits.
      if ('stream' in req) return undefined
      return refuse(505, `HTTP/${req.httpVersion} on an HTTP/1 connection`)
    }
    const method = req.method!
    const url = req.url!
    if (line > 0 && method.length + url.length + LINE_OVERHEAD > line) {
      return refuse(414, `request line is too large (${method.length + url.length + LINE_OVERHEAD} > ${line})`)
    }
    const raw = req.rawHeaders
    const n = raw.length
    if (n > rawLimit) return refuse(431, `more than ${fields} header fields`)
    let hosts = 0
    let contentTypes = 0
    let transferEncoding = false
    for (let i = 0; i < n; i += 2) {
      const name = raw[i]!
      const len = name.length
      // The field line as gunicorn measures it: name, ": ", value, CRLF.
      if (fieldSize > 0 && len + raw[i + 1]!.length + 4 > fieldSize) {
        return refuse(431, `header field ${name} is larger than ${fieldSize} bytes`)
      }
      if (len === 4) {
        if (is(name, 'Host', 'host')) {
          if (++hosts > 1) return refuse(400, 'more than one Host header')
          const host = raw[i + 1]!
          if (host !== knownHost) {
            if (!HOST.test(host)) return refuse(400, 'invalid Host header')
            knownHost = host
          }
        }
      } else if (len === 12) {
        if (is(name, 'Content-Type', 'content-type')) contentTypes++
      } else if (len === 17) {
        if (is(name, 'Transfer-Encoding', 'transfer-encoding')) transferEncoding = true
      }
    }
    if (contentTypes > 1) return refuse(400, 'more than one Content-Type header')
    if (transferEncoding && req.httpVersionMinor === 0) return refuse(400, 'Transfer-Encoding in an HTTP/1.0 request')
    if (url === '*' && method !== 'OPTIONS') return refuse(400, `asterisk-form target with ${method}`)
    return undefined
  }
}

/**
 * Wraps the app's handler: a refused request is answered here, with
 * Connection: close, and never reaches the app.
 */
export function guardRequests(handler: Handler, s: HttpGuardSettings, debug?: Debug): Handler {
  const check = requestChecker(s)
  return function guarded(req, res) {
    const refusal = check(req)
    if (refusal === undefined) return handler(req, res)
    debug?.(`Invalid request from ip=${req.socket.remoteAddress}: ${refusal.reason}`)
    const body = `${STATUS_CODES[refusal.status]}\n`
    res.writeHead(refusal.status, { 'content-type': 'text/plain', 'content-length': body.length, connection: 'close' })
    res.end(body)
  }
}

type UpgradeListener = (req: IncomingMessage, socket: Duplex, head: Buffer) => void

/**
 * The same for node:http's 'upgrade' event (WebSocket handshakes), which
 * node:http routes around the request handler.
 */
export function guardUpgrades(listener: UpgradeListener, s: HttpGuardSettings, debug?: Debug): UpgradeListener {
  const check = requestChecker(s)
  return function guarded(req, socket, head) {
    const refusal = check(req)
    if (refusal === undefined) return listener(req, socket, head)
    debug?.(`Invalid request from ip=${req.socket.remoteAddress}: ${refusal.reason}`)
    socket.on('error', () => socket.destroy())
    socket.end(errorResponse(refusal.status))
    closeSoon(socket)
  }
}

// RFC 9110 §7.2 / RFC 3986 §3.2.2: Host = uri-host [ ":" port ], where
// uri-host is an IP-literal in brackets or a reg-name (unreserved,
// pct-encoded, sub-delims); empty is allowed. RFC 9112 §3.2 says a server
// MUST answer 400 to an invalid one.
const HOST = /^(?:\[[\w:.%~-]+\]|[\w\-.~%!$&'()*+,;=]*)(?::\d*)?$/

/** Case-insensitive name match, trying the usual spellings before lowering the case. */
const is = (name: string, canonical: string, lower: string) =>
  name === canonical || name === lower || name.toLowerCase() === lower

/** What the connection is answered when node:http's parser gives up on it. */
function statusFor(code: string | undefined): number {
  switch (code) {
    case 'HPE_HEADER_OVERFLOW':
      return 431
    case 'HPE_CHUNK_EXTENSIONS_OVERFLOW':
      return 413
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return 408
    default:
      return 400
  }
}

const errorResponse = (status: number) => {
  const body = `${STATUS_CODES[status]}\n`
  return `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: text/plain\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`
}

type ClientError = Error & { code?: string; reason?: string }
// node:http's own handle on the response being written on a socket, which its
// default clientError handling consults for the same reason.
type HttpSocket = Socket & { _httpMessage?: ServerResponse | null }

/**
 * Runs `then` once every response owed on the socket (pipelined ones
 * included) is sent; runs `fail` instead as soon as the one being written
 * belongs to a request whose body is still unread: the bad bytes are in that
 * body, and its app would wait for the rest forever.
 */
function whenAnswered(socket: HttpSocket, fail: () => void, then: () => void): void {
  const res = socket._httpMessage
  if (!res || res.writableFinished) return then()
  if (!res.req.complete) return fail()
  // node:http's own 'finish' listener runs first and hands the socket to the
  // next queued response, if any.
  res.once('finish', () => whenAnswered(socket, fail, then))
  res.once('close', () => {
    if (!res.writableFinished) socket.destroy()
  })
}

/** Closes once what was written is flushed, or after 2 s for a client that does not read. */
function closeSoon(socket: Duplex): void {
  const timer = setTimeout(() => socket.destroy(), 2000).unref()
  socket.once('finish', () => socket.destroy())
  socket.once('close', () => clearTimeout(timer))
}

/**
 * The server-wide part: caps how many header fields node:http keeps (one
 * more than the limit, so guardRequests sees the excess), answers CONNECT
 * with 501, and answers parse errors and timeouts as node:http's default
 * does, with two differences: responses owed for requests before the bad
 * bytes are sent first (a good request pipelined before garbage, or before
 * bytes after `Connection: close`, still gets its answer), and each
 * rejection is logged at debug level.
 */
export function guardServer<S extends Server | HttpsServer>(server: S, s: HttpGuardSettings, debug?: Debug): S {
  server.maxHeadersCount = fieldsLimit(s) + 1
  // CONNECT is for proxies (RFC 9110 §9.3.6) and never reaches an app here;
  // say so instead of node:http's silent close when nothing listens.
  if (server.listenerCount('connect') === 0) {
    server.on('connect', (req: IncomingMessage, socket: Socket) => {
      debug?.(`Invalid request from ip=${socket.remoteAddress}: CONNECT ${req.url}`)
      socket.end(errorResponse(501))
      closeSoon(socket)
    })
  }
  const failing = new WeakSet<Socket>()
  server.on('clientError', (err: ClientError, socket: HttpSocket) => {
    if (failing.has(socket)) return
    failing.add(socket)
    if (err.code === 'ECONNRESET' || !socket.writable) {
      socket.destroy()
      return
    }
    debug?.(`Invalid request from ip=${socket.remoteAddress}: ${err.code ?? ''} ${err.reason ?? err.message}`)
    const fail = () => {
      // As node:http does by default: answer unless a response has begun, then close.
      if (!socket._httpMessage?.headersSent) socket.write(errorResponse(statusFor(err.code)))
      socket.destroy()
    }
    if (!err.code?.startsWith('HPE_')) return fail()
    // A parse error: nothing more is parsed on this connection. Requests
    // before the bad bytes still get their answers; after `Connection: close`
    // node:http then closes the connection itself.
    whenAnswered(socket, fail, () => {
      if (err.code === 'HPE_CLOSED_CONNECTION') return
      if (!socket.writable) return void socket.destroy()
      socket.end(errorResponse(statusFor(err.code)))
      closeSoon(socket)
    })
  })
  return server
}
