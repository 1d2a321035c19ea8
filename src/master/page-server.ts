// The inspector page over HTTP, guarded Jupyter-style: a random token in the
// URL, a Host that must be the bound address or localhost (DNS rebinding),
// an Origin that must be the page's own (cross-site forms). One guard for
// both servers that serve the page: a master's `--inspector` (inspector.ts)
// and `corral inspect --serve` (src/cli/inspect.ts), so they cannot differ.
import { readFileSync } from 'node:fs'
import type { IncomingMessage, Server, ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { fileURLToPath } from 'node:url'
import { corralServers } from '../http/app-server.ts'

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost'])

/**
 * The page may talk to this server and nothing else, and does not pass its
 * URL (with the token) on as a referrer. Its script and styles are inline.
 */
export const PAGE_HEADERS = {
  'content-security-policy':
    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src data: blob:; frame-ancestors 'none'",
  'referrer-policy': 'no-referrer',
}

/** `[HOST:]PORT` into a host and a port; no host is 127.0.0.1. */
function parsePageAddress(spec: string): { host: string; port: number } {
  const i = spec.lastIndexOf(':')
  if (i < 0) return { host: '127.0.0.1', port: Number(spec) }
  const host = spec.slice(0, i).replace(/^\[(.*)\]$/, '$1')
  return { host, port: Number(spec.slice(i + 1)) }
}

/** The built page (dist/inspector/index.html): `given`, else beside the bundle or in the checkout's dist/. */
export function findPage(flag: string, given?: string): string {
  const candidates = given
    ? [given]
    : [
        new URL('./inspector/index.html', import.meta.url),
        new URL('../../dist/inspector/index.html', import.meta.url),
      ].map((u) => fileURLToPath(u))
  for (const path of candidates) {
    try {
      return readFileSync(path, 'utf8')
    } catch {}
  }
  throw new Error(`${flag}: the page is not built (${candidates.join(' or ')}); run npm run build`)
}

export interface GuardedServerOptions {
  /** The flag the address came from, for messages: `--inspector`, `--serve`. */
  readonly flag: string
  /** The flag that allows a non-loopback address. */
  readonly allowRemoteFlag: string
  readonly address: string
  readonly allowRemote: boolean
  /** A request that passed the token, Host and Origin checks. */
  handle(req: IncomingMessage, res: ServerResponse, url: URL): void
}

export interface GuardedServer {
  readonly server: Server
  /** `http://HOST:PORT/?token=TOKEN`: the one URL that opens the page. */
  readonly url: string
}

/** Listens on `address` (loopback unless allowed) and passes on only the requests the guard lets through. */
export async function serveGuarded(options: GuardedServerOptions): Promise<GuardedServer> {
  const { flag, address } = options
  const { host, port } = parsePageAddress(address)
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new Error(`${flag} ${address}: not [HOST:]PORT with a port from 0 to 65535`)
  if (!LOOPBACK.has(host) && !options.allowRemote)
    throw new Error(`${flag} ${address}: not a loopback address; add ${options.allowRemoteFlag} to allow it`)
  // node:crypto here, not at start: a master without a page never loads it (spec/architecture.md).
  const { randomBytes, timingSafeEqual } = process.getBuiltinModule('node:crypto')
  const token = randomBytes(24).toString('hex')
  let refuse: (req: IncomingMessage) => [number, string] | undefined = () => [503, 'starting']
  // Not an ESM import of node:http: see src/http/app-server.ts.
  const server = process.getBuiltinModule('node:http').createServer((req, res) => {
    const refusal = refuse(req)
    if (refusal) {
      res.writeHead(refusal[0], { 'content-type': 'text/plain' }).end(`${refusal[1]}\n`)
      return
    }
    options.handle(req, res, new URL(req.url ?? '/', 'http://page'))
  })
  // --preload with an app that calls listen(): this one is corral's (src/http/app-server.ts).
  corralServers.add(server)
  await new Promise<void>((done, fail) => {
    server.once('error', fail)
    server.listen(port, host, () => {
      server.off('error', fail)
      done()
    })
  })
  const bound = server.address() as AddressInfo
  const shownHost = bound.family === 'IPv6' ? `[${bound.address}]` : bound.address
  const allowedHosts = new Set([`${shownHost}:${bound.port}`, `localhost:${bound.port}`])
  if (host === 'localhost') allowedHosts.add(`127.0.0.1:${bound.port}`)
  const allowedOrigins = new Set([...allowedHosts].map((h) => `http://${h}`))
  refuse = (req) => {
    if (!allowedHosts.has(req.headers.host ?? '')) return [403, 'Host not allowed']
    const origin = req.headers.origin
    if (origin !== undefined && !allowedOrigins.has(origin)) return [403, 'Origin not allowed']
    const given = new URL(req.url ?? '/', 'http://page').searchParams.get('token')
    if (given === null) return [401, 'token required: use the URL corral gave']
    const a = Buffer.from(given)
    const b = Buffer.from(token)
    if (a.length !== b.length || !timingSafeEqual(a, b)) return [403, 'wrong token']
    return undefined
  }
  return { server, url: `http://${shownHost}:${bound.port}/?token=${token}` }
}
