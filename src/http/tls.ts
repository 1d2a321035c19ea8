// TLS and HTTP/2 in the workers: --certfile, --keyfile, --ca-certs,
// --cert-reqs, --ciphers and --http-protocols (gunicorn's names).
//
// The worker builds its server here: node:http without TLS, node:https with
// it, and http2.createSecureServer({ allowHTTP1: true }) when h2 is asked
// for, so one port serves HTTP/2 and HTTP/1.1 (chosen by ALPN) to the same
// (req, res) handler through Node's compatibility API. Each worker reads the
// certificate files when it boots: after renewing them, a HUP (a new
// generation of workers) serves the new ones without a restart.
//
// The master checks the same files at start (checkTlsSettings), so a bad
// path, a key that does not match its certificate, or a cipher list that
// matches nothing stops corral with exit 2 and one line naming the setting.
// See spec/listeners.md.
import fs from 'node:fs'
import type { Server, ServerOptions, ServerResponse } from 'node:http'
import type { Http2ServerRequest, Http2Session } from 'node:http2'
import type * as tls from 'node:tls'

// node:tls, node:https and node:http2 cost a process about 25 ms of CPU to
// load: only a worker or master that serves or checks TLS loads them.
const nodeTls = () => process.getBuiltinModule('node:tls')
// Not an ESM import of node:http: see src/http/app-server.ts.
const { createServer: createHttpServer, IncomingMessage } = process.getBuiltinModule('node:http')

export interface TlsSettings {
  readonly certfile?: string | undefined
  readonly keyfile?: string | undefined
  readonly caCerts?: string | undefined
  readonly certReqs: number
  readonly ciphers?: string | undefined
  readonly httpProtocols: string
}

type IncomingMessage = InstanceType<typeof IncomingMessage>
type Handler = (req: IncomingMessage, res: ServerResponse) => void

// ---------------------------------------------------------------------------
// --http-protocols

interface HttpProtocols {
  readonly h1: boolean
  readonly h2: boolean
}

/** `h2,h1` → { h1, h2 }; the reason when the value is not a list of h1 and h2. */
function parseHttpProtocols(value: string): HttpProtocols | string {
  const names = value.split(',').map((p) => p.trim().toLowerCase())
  if (names.length === 0 || names.some((n) => n === ''))
    return `expected h1, h2 or both, comma-separated, got ${JSON.stringify(value)}`
  for (const n of names) {
    if (n === 'h3') return 'h3 is not served (HTTP/3 runs over QUIC, which node:http does not serve)'
    if (n !== 'h1' && n !== 'h2') return `unknown protocol ${JSON.stringify(n)} (expected h1 or h2)`
  }
  if (new Set(names).size !== names.length) return `${JSON.stringify(value)} names a protocol twice`
  return { h1: names.includes('h1'), h2: names.includes('h2') }
}

export const httpProtocolsProblem = (value: string): string | undefined => {
  const p = parseHttpProtocols(value)
  return typeof p === 'string' ? p : undefined
}

// ---------------------------------------------------------------------------
// Reading and checking the files

const isTls = (s: TlsSettings): boolean => s.certfile !== undefined || s.keyfile !== undefined

/** What https/http2 need: certificate, key, CA certificates and client-certificate policy. */
export type TlsOptions = tls.TlsOptions

export type TlsResult = { ok: true; options: TlsOptions | undefined } | { ok: false; errors: string[] }

// OpenSSL says "error:0480006C:PEM routines::no start line"; the last words are the reason.
const sslReason = (err: unknown): string => {
  const m = err instanceof Error ? err.message : String(err)
  return m.replace(/^error:[0-9A-F]+:[^:]*:[^:]*:/i, '').trim() || m
}

const hasPem = (text: string, what: RegExp): boolean => what.test(text)
const CERT_PEM = /-----BEGIN (?:TRUSTED )?CERTIFICATE-----/
const KEY_PEM = /-----BEGIN (?:[A-Z]+ )?PRIVATE KEY-----/

/**
 * Reads the TLS files and builds a secure context from them, piece by piece
 * so that each problem names the setting at fault. `options` is undefined
 * when TLS is off. Relative paths are taken from the working directory
 * (after --chdir).
 */
export function loadTls(s: TlsSettings): TlsResult {
  const errors: string[] = []
  const protocols = parseHttpProtocols(s.httpProtocols)
  if (typeof protocols === 'string') return { ok: false, errors: [`--http-protocols: ${protocols}`] }
  if (!isTls(s)) {
    if (protocols.h2)
      errors.push(
        '--http-protocols: h2 needs TLS: give --certfile and --keyfile (clients speak HTTP/2 over TLS, chosen by ALPN)',
      )
    if (s.caCerts !== undefined)
      errors.push('--ca-certs: needs --certfile and --keyfile (without them nothing is served over TLS)')
    if (s.certReqs !== 0)
      errors.push('--cert-reqs: needs --certfile and --keyfile (without them nothing is served over TLS)')
    if (s.ciphers !== undefined)
      errors.push('--ciphers: needs --certfile and --keyfile (without them nothing is served over TLS)')
    return errors.length > 0 ? { ok: false, errors } : { ok: true, options: undefined }
  }
  if (s.certfile === undefined)
    return { ok: false, errors: ['--keyfile: needs --certfile, the certificate the key belongs to'] }

  const read = (flag: string, file: string): string | undefined => {
    try {
      return fs.readFileSync(file, 'utf8')
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code
      errors.push(
        `${flag}: can't read ${file} (${code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : (code ?? sslReason(err))})`,
      )
      return undefined
    }
  }
  const cert = read('--certfile', s.certfile)
  const keyText = s.keyfile === undefined ? undefined : read('--keyfile', s.keyfile)
  const ca = s.caCerts === undefined ? undefined : read('--ca-certs', s.caCerts)
  if (errors.length > 0 || cert === undefined) return { ok: false, errors }

  const attempt = (flag: string, options: tls.SecureContextOptions, what: string): boolean => {
    try {
      nodeTls().createSecureContext(options)
      return true
    } catch (err) {
      const reason = sslReason(err)
      errors.push(what.includes(reason) ? `${flag}: ${what}` : `${flag}: ${what} (${reason})`)
      return false
    }
  }
  let certOk = false
  if (!hasPem(cert, CERT_PEM)) errors.push(`--certfile: ${s.certfile} holds no PEM certificate`)
  else certOk = attempt('--certfile', { cert }, `${s.certfile} holds no usable PEM certificate`)
  // Like Python's load_cert_chain, the key may sit in the certificate file.
  let key = keyText
  if (key === undefined) {
    if (hasPem(cert, KEY_PEM)) key = cert
    else errors.push(`--keyfile: missing: ${s.certfile} holds no private key, so give the key file`)
  } else if (!hasPem(key, KEY_PEM)) {
    errors.push(`--keyfile: ${s.keyfile} holds no PEM private key`)
    key = undefined
  } else if (!attempt('--keyfile', { key }, `${s.keyfile} holds no usable private key`)) key = undefined
  if (certOk && key !== undefined) {
    certOk = attempt(
      '--keyfile',
      { cert, key },
      `the key in ${s.keyfile ?? s.certfile} does not belong to the certificate in ${s.certfile}`,
    )
  }
  if (ca !== undefined) {
    if (!hasPem(ca, CERT_PEM)) errors.push(`--ca-certs: ${s.caCerts} holds no PEM certificate`)
    else attempt('--ca-certs', { ca }, `${s.caCerts} holds no usable PEM certificates`)
  }
  if (s.ciphers !== undefined) {
    if (s.ciphers.trim() === '') errors.push('--ciphers: the cipher list is empty')
    else attempt('--ciphers', { ciphers: s.ciphers }, `${JSON.stringify(s.ciphers)}: no cipher match`)
  }
  if (errors.length > 0) return { ok: false, errors }

  return {
    ok: true,
    options: {
      cert,
      key: key!,
      ...(ca !== undefined && { ca }),
      ...(s.ciphers !== undefined && { ciphers: s.ciphers }),
      // gunicorn's cert_reqs: 0 CERT_NONE, 1 CERT_OPTIONAL, 2 CERT_REQUIRED.
      requestCert: s.certReqs > 0,
      rejectUnauthorized: s.certReqs === 2,
    },
  }
}

/** At start, in the master: the problems, one line each, naming the setting. */
export function checkTlsSettings(s: TlsSettings): string[] {
  const r = loadTls(s)
  return r.ok ? [] : r.errors
}

// ---------------------------------------------------------------------------
// The server

const h2Sessions = new WeakMap<Server, { sessions: Set<Http2Session>; draining: boolean }>()

/**
 * The worker's server for one listener: node:http, node:https, or an HTTP/2
 * secure server that also speaks HTTP/1.1, depending on the settings.
 * `tlsOptions` are what loadTls read (as the sslContext hook left them),
 * read once per process and shared by every listener; undefined serves
 * plain HTTP. Typed as node:http's Server: the HTTP/1 side of all three
 * behaves as one.
 */
export function createWebServer(
  s: TlsSettings,
  httpOptions: ServerOptions,
  handler: Handler,
  tlsOptions: TlsOptions | undefined,
): Server {
  const protocols = parseHttpProtocols(s.httpProtocols) as HttpProtocols
  if (!tlsOptions) return createHttpServer(httpOptions, handler)

  let server: Server
  if (!protocols.h2) {
    server = process
      .getBuiltinModule('node:https')
      .createServer({ ...httpOptions, ...tlsOptions, ALPNProtocols: ['http/1.1'] }, handler) as unknown as Server
  } else {
    const h2 = process.getBuiltinModule('node:http2').createSecureServer(
      {
        ...tlsOptions,
        allowHTTP1: protocols.h1,
        // What the HTTP/1 limits allow, for HTTP/2 requests too.
        ...(httpOptions.maxHeaderSize !== undefined && { settings: { maxHeaderListSize: httpOptions.maxHeaderSize } }),
      },
      h2Handler(handler),
    )
    // allowHTTP1 serves HTTP/1.1 with node:http's own connection code, which
    // reads these from the server object; createSecureServer takes none of them.
    Object.assign(h2, httpOptions)
    const state = { sessions: new Set<Http2Session>(), draining: false }
    h2.on('session', (session: Http2Session) => {
      state.sessions.add(session)
      if (state.draining) session.close()
      session.once('close', () => state.sessions.delete(session))
    })
    // node:http's quick stop, for a server that has none of its own.
    const sockets = new Set<tls.TLSSocket>()
    h2.on('secureConnection', (socket: tls.TLSSocket) => {
      sockets.add(socket)
      socket.once('close', () => sockets.delete(socket))
    })
    Object.assign(h2, {
      closeAllConnections() {
        for (const socket of sockets) socket.destroy()
      },
      closeIdleConnections() {},
    })
    server = h2 as unknown as Server
    h2Sessions.set(server, state)
  }
  if (s.certReqs === 1) {
    // CERT_OPTIONAL as Python (so gunicorn) has it: a client may send no
    // certificate, but one it sends must verify against --ca-certs.
    server.on('secureConnection', (socket: tls.TLSSocket) => {
      if (!socket.authorized && Object.keys(socket.getPeerCertificate()).length > 0) socket.destroy()
    })
  }
  return server
}

/**
 * Why this app cannot be served with --http-protocols h2, if it cannot.
 * Express (4 and 5) gives every request node:http's IncomingMessage
 * prototype, whose stream code breaks on an HTTP/2 request: the first h2
 * request would crash the worker. Better to refuse at boot, saying why.
 */
export function h2Refusal(app: unknown, s: TlsSettings): string | undefined {
  const protocols = parseHttpProtocols(s.httpProtocols)
  if (typeof protocols === 'string' || !protocols.h2 || !isTls(s)) return undefined
  const express = app as { handle?: unknown; set?: unknown; request?: unknown }
  if (
    typeof app === 'function' &&
    typeof express.handle === 'function' &&
    typeof express.set === 'function' &&
    Object.prototype.isPrototypeOf.call(IncomingMessage.prototype, express.request as object)
  ) {
    return "an Express app can't be served over HTTP/2 (it gives each request node:http's prototype, which breaks on HTTP/2's request objects): use --http-protocols h1"
  }
  return undefined
}

/**
 * HTTP/2 requests through the compatibility API: the same handler, with a
 * Host header made from :authority when the client sent none (as gunicorn
 * sets HTTP_HOST), since apps and frameworks read the host from there.
 */
function h2Handler(handler: Handler): (req: Http2ServerRequest | IncomingMessage, res: unknown) => void {
  return (req, res) => {
    if (req.httpVersionMajor === 2 && req.headers.host === undefined) {
      const authority = (req as Http2ServerRequest).authority
      if (authority) req.headers.host = authority
    }
    handler(req as IncomingMessage, res as ServerResponse)
  }
}

/**
 * Graceful stop, HTTP/2 side: session.close() on every session sends GOAWAY
 * naming the last stream processed; those streams finish, and the client
 * opens its next ones on a new connection, to another worker. A session
 * still being set up is closed as soon as it is. A request that crossed the
 * GOAWAY on the wire is refused (REFUSED_STREAM), which tells the client it
 * was not processed and may be retried (RFC 9113 §8.7); see
 * spec/listeners.md for why the two-step GOAWAY of §6.8 is not used.
 * HTTP/1.1 connections are told with Connection: close by the worker.
 */
export function goAway(server: Server): void {
  const state = h2Sessions.get(server)
  if (!state) return
  state.draining = true
  for (const session of state.sessions) session.close()
}

/** A listener's address as clients reach it: https:// when TLS is on. */
export const withScheme = (address: string, s: TlsSettings): string =>
  isTls(s) ? address.replace(/^http:\/\//, 'https://') : address
