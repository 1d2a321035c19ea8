// A StatsD client over UDP for --statsd-host (spec/metrics.md, "StatsD"),
// used by the workers (requests) and the master (workers, log lines).
//
// Nothing waits on it: counters are added up in memory, each timing is one
// short line appended to a buffer, and the buffer goes out as one datagram of
// newline-separated lines when it would pass MAX_DATAGRAM or every FLUSH_MS.
// A send is fire-and-forget on a connected UDP socket: when nothing listens,
// the kernel's "port unreachable" comes back as an error that is dropped.
import type { Socket } from 'node:dgram'
import { isIPv4, isIPv6 } from 'node:net'
import type { Logger } from '../logging/log.ts'

/** Stays under a 1500-byte Ethernet MTU once IP and UDP headers are added (the usual StatsD client choice). */
const MAX_DATAGRAM = 1432
/** How long counts and timings wait at most before they are sent. */
const FLUSH_MS = 1000
/** Datagrams kept while the socket connects; beyond that they are dropped. */
const MAX_EARLY = 16

const HOSTNAME = /^[a-z0-9_](?:[a-z0-9_.-]{0,252})$/i
// StatsD's own separators, and whitespace, cannot appear in a name or a tag.
const BAD_NAME = /[\s:|@#,]/
const BAD_TAG = /[\s|#,]/

interface StatsdAddress {
  host: string
  port: number
}

function addressOrReason(s: string): StatsdAddress | string {
  const expected = `${JSON.stringify(s)} is not a StatsD address (expected HOST:PORT or [IPV6]:PORT)`
  if (s.startsWith('unix:'))
    return `${JSON.stringify(s)}: StatsD over a unix socket needs a datagram socket, which Node cannot open; use HOST:PORT`
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]\s]+)):(\d{1,5})$/.exec(s)
  if (!m) return expected
  const host = m[1] ?? m[2]!
  const port = Number(m[3])
  if (port < 1 || port > 65535) return `${JSON.stringify(s)}: the port must be 1 to 65535`
  if (m[1] !== undefined ? !isIPv6(host) : !isIPv4(host) && !HOSTNAME.test(host)) return expected
  return { host, port }
}

export function statsdAddressProblem(s: string): string | undefined {
  const a = addressOrReason(s)
  return typeof a === 'string' ? a : undefined
}

export function statsdPrefixProblem(s: string): string | undefined {
  return BAD_NAME.test(s) ? `${JSON.stringify(s)}: a StatsD prefix has no spaces, ':', '|', '@', '#' or ','` : undefined
}

export function dogstatsdTagsProblem(s: string): string | undefined {
  const bad = s.split(',').find((tag) => tag === '' || BAD_TAG.test(tag))
  if (s === '' || bad === undefined) return undefined
  return `${JSON.stringify(s)}: expected tags separated by commas (env:prod,service:shop), each without spaces, '|' or '#'`
}

export interface StatsdSettings {
  readonly statsdHost: string | undefined
  readonly statsdPrefix: string
  readonly dogstatsdTags: string
}

export interface Statsd {
  /** Adds to a counter; sent as one `|c` line per name at the next flush. */
  count(name: string, n?: number): void
  /** One `|ms` line per call: a StatsD timer (histogram) keeps every value. */
  timing(name: string, ms: number): void
  /** The value now; sent at the next flush. */
  gauge(name: string, value: number): void
  /** Sends what is pending and closes the socket. */
  close(): void
}

/** A client for the settings, or undefined when --statsd-host is not set. Names get `PREFIX.corral.`. */
export function createStatsd(settings: StatsdSettings): Statsd | undefined {
  if (settings.statsdHost === undefined) return undefined
  const address = addressOrReason(settings.statsdHost)
  if (typeof address === 'string') throw new Error(`--statsd-host: ${address}`)
  const prefix = `${settings.statsdPrefix === '' ? '' : `${settings.statsdPrefix.replace(/\.+$/, '')}.`}corral.`
  const tags = settings.dogstatsdTags === '' ? '' : `|#${settings.dogstatsdTags}`
  const counts = new Map<string, number>()
  const gauges = new Map<string, number>()
  let lines = ''
  let connected = false
  let closed = false
  /** Datagrams made before the socket is connected (a hostname being resolved): sent once it is, a few at most. */
  let early: string[] = []
  // node:dgram only with --statsd-host: a process without it starts without it.
  const socket: Socket = process.getBuiltinModule('node:dgram').createSocket(isIPv6(address.host) ? 'udp6' : 'udp4')
  // Nothing listening, an unknown host, a full buffer: the metric is lost, never the request.
  socket.on('error', () => {})
  socket.connect(address.port, address.host, () => {
    connected = true
    for (const datagram of early) send(datagram)
    early = []
    if (closed) socket.close()
  })
  socket.unref()
  const timer = setInterval(flush, FLUSH_MS)
  timer.unref()

  function send(datagram: string): void {
    if (connected) socket.send(datagram, dropError)
    else if (early.length < MAX_EARLY) early.push(datagram)
  }

  function add(line: string): void {
    if (lines.length + line.length + 1 > MAX_DATAGRAM && lines !== '') {
      send(lines)
      lines = ''
    }
    lines = lines === '' ? line : `${lines}\n${line}`
  }

  function flush(): void {
    for (const [name, n] of counts) add(`${prefix}${name}:${n}|c${tags}`)
    counts.clear()
    for (const [name, v] of gauges) add(`${prefix}${name}:${v}|g${tags}`)
    gauges.clear()
    if (lines !== '') send(lines)
    lines = ''
  }

  return {
    count(name, n = 1) {
      counts.set(name, (counts.get(name) ?? 0) + n)
    },
    timing(name, ms) {
      add(`${prefix}${name}:${Math.round(ms * 1000) / 1000}|ms${tags}`)
    },
    gauge(name, value) {
      gauges.set(name, value)
    },
    close() {
      if (closed) return
      clearInterval(timer)
      flush()
      closed = true
      // After the last send has left (closing at once would cancel it), or once connected to send what waits.
      if (connected) setImmediate(() => socket.close())
    },
  }
}

const dropError = () => {}

/** gunicorn's log.LEVEL counters: every warning, error, critical and exception line also counts. */
export function countingLogLines(log: Logger, statsd: Statsd | undefined): Logger {
  if (!statsd) return log
  const counted =
    (level: string, write: (msg: string) => void) =>
    (msg: string): void => {
      statsd.count(`log.${level}`)
      write(msg)
    }
  return {
    ...log,
    warning: counted('warning', log.warning),
    error: counted('error', log.error),
    critical: counted('critical', log.critical),
    exception: (msg, err) => {
      statsd.count('log.exception')
      log.exception(msg, err)
    },
  }
}
