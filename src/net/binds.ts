// Listener addresses: the one `Bind` type, how a --bind string becomes one,
// and how one is printed. The settings keep the strings the user wrote (what
// --print-config shows back) and check them with `bindProblem`; the master
// parses them with `parseBind` when it opens its listeners (src/net/listeners.ts).
import { isIPv4, isIPv6 } from 'node:net'

export type Bind =
  | { readonly kind: 'tcp'; readonly host: string; readonly port: number }
  | { readonly kind: 'unix'; readonly path: string }
  /**
   * reusePort: a --reuse-port placeholder handed over by a previous master
   * (USR2), kept bound and never listened on. No --bind string gives one.
   */
  | { readonly kind: 'fd'; readonly fd: number; readonly reusePort?: true }

export const BIND_FORMS = 'HOST:PORT, [IPV6]:PORT, unix:PATH or fd://N'

// RFC 1123 labels, plus '_' because container service names use it.
const HOSTNAME =
  /^(?=.{1,253}\.?$)[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?(?:\.[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?)*\.?$/i
const DIGITS = /^\d+$/

/** Parses an address; returns the reason it is not one as a string. */
function bindOrReason(s: string): Bind | string {
  const quoted = JSON.stringify(s)
  const notAnAddress = `${quoted} is not an address (expected ${BIND_FORMS})`
  if (s.startsWith('unix:')) {
    const path = s.slice('unix:'.length)
    return path === '' ? `${quoted}: unix socket path is empty` : { kind: 'unix', path }
  }
  if (s.startsWith('fd://')) {
    const n = s.slice('fd://'.length)
    return DIGITS.test(n) && Number.isSafeInteger(Number(n))
      ? { kind: 'fd', fd: Number(n) }
      : `${quoted}: expected fd://N with N a file descriptor number`
  }
  // gunicorn accepts tcp://; http:// makes a listener's logged address parse back.
  const hostPort = s.startsWith('tcp://') ? s.slice(6) : s.startsWith('http://') ? s.slice(7) : s
  let host: string
  let portText: string
  if (hostPort.startsWith('[')) {
    const close = hostPort.indexOf(']')
    if (close < 0 || hostPort[close + 1] !== ':') return notAnAddress
    host = hostPort.slice(1, close)
    portText = hostPort.slice(close + 2)
    if (!isIPv6(host)) return `${quoted}: ${JSON.stringify(host)} is not an IPv6 address`
  } else {
    const colon = hostPort.lastIndexOf(':')
    if (colon < 0) return notAnAddress
    host = hostPort.slice(0, colon)
    portText = hostPort.slice(colon + 1)
    if (host.includes(':')) return `${quoted}: put an IPv6 address in brackets, as [${host}]:${portText}`
    if (!isIPv4(host) && !HOSTNAME.test(host)) return notAnAddress
  }
  const port = Number(portText)
  if (!DIGITS.test(portText) || port > 65535) return `${quoted}: port must be an integer from 0 to 65535`
  return { kind: 'tcp', host, port }
}

/** Why `s` is not an address, or undefined when it is one. */
export function bindProblem(s: string): string | undefined {
  const b = bindOrReason(s)
  return typeof b === 'string' ? b : undefined
}

/** Parses `HOST:PORT`, `[IPV6]:PORT`, `unix:PATH` or `fd://N`; throws on anything else. */
export function parseBind(s: string): Bind {
  const b = bindOrReason(s)
  if (typeof b === 'string') throw new Error(b)
  return b
}

/**
 * The inverse of parseBind, and how an address is shown to people: the form a
 * user writes in --bind (`127.0.0.1:8000`, `[::1]:8000`, `unix:/path`, `fd://3`).
 */
export function bindToString(b: Bind): string {
  switch (b.kind) {
    case 'tcp':
      return b.host.includes(':') ? `[${b.host}]:${b.port}` : `${b.host}:${b.port}`
    case 'unix':
      return `unix:${b.path}`
    case 'fd':
      return `fd://${b.fd}`
  }
}
