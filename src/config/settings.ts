// The settings registry: every setting corral has, in one table, from which
// the argument parser, help text, env-var defaults, validation (and later the
// config file, CORRAL_CMD_ARGS, --print-config and spec/settings.md) are
// derived. Adding a setting means adding one entry to `registry`.

import { availableParallelism } from 'node:os'
import { isIPv4, isIPv6 } from 'node:net'
import * as Schema from 'effect/Schema'
import * as SchemaIssue from 'effect/SchemaIssue'
import * as Result from 'effect/Result'
import { LOG_LEVELS } from '../logging/log.ts'
import { DEFAULT_ACCESS_LOG_FORMAT, parseAccessLogFormat } from '../logging/access-log-format.ts'
import { groupProblem, userProblem } from '../process/privileges.ts'
import { envEntryProblem, umaskProblem } from '../process/process-settings.ts'
import { httpProtocolsProblem } from '../http/tls.ts'
import { hookSettings } from './hook-settings.ts'
import {
  allowListProblem,
  DEFAULT_SECURE_SCHEME_HEADERS,
  secureSchemeHeadersProblem,
  type AllowListValue,
  type SecureSchemeHeadersValue,
} from '../http/forwarded.ts'

// ---------------------------------------------------------------------------
// Listener addresses

export type Bind =
  | { readonly kind: 'tcp'; readonly host: string; readonly port: number }
  | { readonly kind: 'unix'; readonly path: string }
  | { readonly kind: 'fd'; readonly fd: number }

const BIND_FORMS = 'HOST:PORT, [IPV6]:PORT, unix:PATH or fd://N'

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
  // gunicorn accepts tcp://; http:// makes formatBind's output parse back.
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

/** Parses `HOST:PORT`, `[IPV6]:PORT`, `unix:PATH` or `fd://N`; throws on anything else. */
export function parseBind(s: string): Bind {
  const b = bindOrReason(s)
  if (typeof b === 'string') throw new Error(b)
  return b
}

/** How an address is shown to people: `http://127.0.0.1:8000`, `http://[::1]:8000`, `unix:/path`, `fd://3`. */
export function formatBind(b: Bind): string {
  return b.kind === 'tcp' ? `http://${bindToString(b)}` : bindToString(b)
}

/** The inverse of parseBind: the form a user writes in --bind. */
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

// Settings keep addresses as the strings the user wrote (what --print-config
// shows back); the listener code calls parseBind, which cannot fail on them.
const Address = Schema.String.annotate({ expected: 'an address' }).check(
  Schema.makeFilter((s: string) => {
    const b = bindOrReason(s)
    return typeof b === 'string' ? b : undefined
  }),
)

// ---------------------------------------------------------------------------
// Value schemas. Each carries an `expected` phrase: a failure reads
// "expected <phrase>, got <input>".

const expecting = (phrase: string) => ({ expected: phrase })

function intAtLeast(min: number, phrase: string) {
  const e = expecting(phrase)
  return Schema.Number.annotate(e).check(Schema.isInt(e), Schema.isGreaterThanOrEqualTo(min, e))
}

const PositiveInt = intAtLeast(1, 'a positive integer')
const Seconds = intAtLeast(0, 'a whole number of seconds (0 or more)')
const Flag = Schema.Boolean.annotate(expecting('true or false'))
const OptionalPath = Schema.UndefinedOr(Schema.String.check(Schema.isNonEmpty(expecting('a file path')))).annotate(
  expecting('a file path'),
)
const OptionalString = Schema.UndefinedOr(Schema.String).annotate(expecting('a string'))
const AccessLogFormat = Schema.String.annotate(expecting('an access log format')).check(
  Schema.makeFilter((s: string) => {
    const parts = parseAccessLogFormat(s)
    return typeof parts === 'string' ? parts : undefined
  }),
)

// -u/--user, -g/--group, -m/--umask, -e/--env (src/process/privileges.ts, src/process/process-settings.ts).
const idOrName = (phrase: string, problem: (v: string | number) => string | undefined) =>
  Schema.UndefinedOr(
    Schema.Union([Schema.String, Schema.Number])
      .annotate(expecting(phrase))
      .check(Schema.makeFilter((v: string | number) => problem(v))),
  ).annotate(expecting(phrase))
const Umask = Schema.UndefinedOr(
  Schema.Union([Schema.String, Schema.Number])
    .annotate(expecting('an octal mask such as 022'))
    .check(Schema.makeFilter((v: string | number) => umaskProblem(v))),
).annotate(expecting('an octal mask such as 022'))
// --http-protocols (src/http/tls.ts): h1 and/or h2, comma-separated.
const HttpProtocols = Schema.String.annotate(expecting('h1, h2 or both, comma-separated')).check(
  Schema.makeFilter((v: string) => httpProtocolsProblem(v)),
)
// --forwarded-allow-ips, --proxy-allow-from, --secure-scheme-headers (src/http/forwarded.ts).
const AllowList = Schema.Union([Schema.String, Schema.Array(Schema.String)])
  .annotate(expecting('IP addresses or networks, comma-separated, or *'))
  .check(Schema.makeFilter((v: AllowListValue) => allowListProblem(v)))
const SecureSchemeHeaders = Schema.Union([Schema.String, Schema.Record(Schema.String, Schema.String)])
  .annotate(expecting('NAME=VALUE pairs, comma-separated'))
  .check(Schema.makeFilter((v: SecureSchemeHeadersValue) => secureSchemeHeadersProblem(v)))
const EnvEntries = Schema.Array(
  Schema.String.annotate(expecting('KEY=VALUE')).check(Schema.makeFilter((v: string) => envEntryProblem(v))),
).annotate(expecting('a list of KEY=VALUE strings'))

// ---------------------------------------------------------------------------
// The registry

/** 'hook': a function, set only in a config file (no flags). */
type SettingType = 'int' | 'number' | 'string' | 'boolean' | 'list' | 'enum' | 'hook'

/** Help groups settings by section, in this order. */
export const SECTIONS = [
  'Config',
  'Server',
  'TLS',
  'Worker processes',
  'Security',
  'Logging',
  'Process',
  'Debugging',
  'Server hooks',
  'Help',
] as const
type Section = (typeof SECTIONS)[number]

export interface SettingSpec<N extends string = string, S extends Schema.Top = Schema.Top> {
  /** camelCase key, as in a config file. */
  readonly name: N
  /** Short flag first when there is one: `['-w', '--workers']`. */
  readonly flags: readonly string[]
  /** An env var that, when set, replaces the default (e.g. WEB_CONCURRENCY). */
  readonly env?: string
  /** Only on the command line and in CORRAL_CMD_ARGS: not a config-file key. */
  readonly cliOnly?: boolean
  readonly section: Section
  /** Value placeholder in help; absent for booleans. */
  readonly meta?: string
  /** How a string (argv, env) becomes a value; 'list' flags repeat and collect. */
  readonly type: SettingType
  readonly choices?: readonly string[]
  /** In the encoded form a user would write; a function is evaluated per resolution. */
  readonly default: S['Encoded'] | ((env: NodeJS.ProcessEnv) => S['Encoded'])
  /** Describes a computed default in help, where the value itself would mislead. */
  readonly defaultDoc?: string
  readonly schema: S
  /** First sentence is the help line; the whole paragraph is the reference. */
  readonly doc: string
}

function setting<const N extends string, S extends Schema.Top>(spec: SettingSpec<N, S>): SettingSpec<N, S> {
  return spec
}

export const registry = [
  setting({
    name: 'config',
    flags: ['-c', '--config'],
    section: 'Config',
    meta: 'CONFIG',
    type: 'string',
    cliOnly: true,
    default: undefined,
    defaultDoc: './corral.config.ts (or .mts, .js, .mjs) when present',
    schema: OptionalPath,
    doc:
      'The config file to load settings from. It is a module whose default export is an object ' +
      'of settings with camelCase keys (wrap it in defineConfig() from "corral" for types). ' +
      'Without this flag, corral.config.ts, .mts, .js or .mjs in the working directory is loaded when present. ' +
      'Its settings override the defaults; CORRAL_CMD_ARGS and the command line override it. ' +
      'HUP reads it again.',
  }),
  setting({
    name: 'bind',
    flags: ['-b', '--bind'],
    section: 'Server',
    meta: 'ADDRESS',
    type: 'list',
    default: ['127.0.0.1:8000'],
    schema: Schema.Array(Address)
      .annotate(expecting('a list of addresses'))
      .check(Schema.isMinLength(1, expecting('at least one address'))),
    doc:
      'The socket to listen on; repeat the flag to listen on several. ' +
      `An address is ${BIND_FORMS}: a TCP host (IPv4 address or hostname) and port, ` +
      'a bracketed IPv6 address and port, a unix socket path, or a file descriptor ' +
      'already open and inherited from the parent process.',
  }),
  setting({
    name: 'backlog',
    flags: ['--backlog'],
    section: 'Server',
    meta: 'INT',
    type: 'int',
    default: 2048,
    schema: PositiveInt,
    doc:
      'The most connections the kernel queues on each listening socket before one is accepted (listen(2) backlog); ' +
      'past it, new connections wait or fail. The kernel caps it at net.core.somaxconn. Applied only at start.',
  }),
  setting({
    name: 'reusePort',
    flags: ['--reuse-port'],
    section: 'Server',
    type: 'boolean',
    default: false,
    schema: Flag,
    doc:
      'Give each worker its own listening socket for every TCP address (SO_REUSEPORT), and let the kernel spread ' +
      'new connections over them, instead of one socket shared by all workers. ' +
      "The trade-off: connections queued on a worker's socket when that worker stops (a reload, a crash, max requests) " +
      'are reset. unix sockets and inherited ones stay shared. Applied only at start. See spec/listeners.md.',
  }),
  setting({
    name: 'httpProtocols',
    flags: ['--http-protocols'],
    section: 'Server',
    meta: 'STRING',
    type: 'string',
    default: 'h1',
    schema: HttpProtocols,
    doc:
      'The HTTP versions served, comma-separated: h1 (HTTP/1.1), h2 (HTTP/2, over TLS only, chosen by ALPN). ' +
      'With h2,h1 one port serves both: a client that offers h2 gets it, the others HTTP/1.1, and the app is the same. ' +
      'h2 needs --certfile and --keyfile; Express apps cannot run on HTTP/2 and are refused at boot. See spec/listeners.md.',
  }),
  setting({
    name: 'certfile',
    flags: ['--certfile'],
    section: 'TLS',
    meta: 'FILE',
    type: 'string',
    default: undefined,
    defaultDoc: 'none',
    schema: OptionalPath,
    doc:
      'A PEM certificate (chain) file: with it (and --keyfile) every listener serves HTTPS. ' +
      'Each worker reads the files when it starts, so after renewing them a HUP (new workers) serves the new ones with no restart.',
  }),
  setting({
    name: 'keyfile',
    flags: ['--keyfile'],
    section: 'TLS',
    meta: 'FILE',
    type: 'string',
    default: undefined,
    defaultDoc: 'none',
    schema: OptionalPath,
    doc: 'The PEM private key of --certfile. May be left out when --certfile holds the key too. The workers read it, so it must be readable by --user.',
  }),
  setting({
    name: 'caCerts',
    flags: ['--ca-certs'],
    section: 'TLS',
    meta: 'FILE',
    type: 'string',
    default: undefined,
    defaultDoc: "none (Node's bundled root certificates)",
    schema: OptionalPath,
    doc: 'PEM certificates of the authorities that client certificates (--cert-reqs 1 or 2) must chain to.',
  }),
  setting({
    name: 'certReqs',
    flags: ['--cert-reqs'],
    section: 'TLS',
    meta: 'INT',
    type: 'int',
    default: 0,
    schema: intAtLeast(0, '0, 1 or 2').check(Schema.isLessThanOrEqualTo(2, expecting('0, 1 or 2'))),
    doc:
      'Client certificates, as gunicorn numbers it: 0 none asked; 1 optional (asked for; a client may send none, ' +
      'but one that does not verify against --ca-certs ends the handshake); 2 required (no verified certificate, no connection). ' +
      'The app sees the certificate with req.socket.getPeerCertificate().',
  }),
  setting({
    name: 'ciphers',
    flags: ['--ciphers'],
    section: 'TLS',
    meta: 'STRING',
    type: 'string',
    default: undefined,
    defaultDoc: "Node's default",
    schema: OptionalString,
    doc:
      'The TLS cipher suites allowed, in OpenSSL cipher-list format (e.g. ECDHE+AESGCM:!aNULL); ' +
      'TLS 1.3 suite names (TLS_AES_256_GCM_SHA384) may be listed too. A list that matches no cipher is an error.',
  }),
  setting({
    name: 'workers',
    flags: ['-w', '--workers'],
    env: 'WEB_CONCURRENCY',
    section: 'Worker processes',
    meta: 'INT',
    type: 'int',
    default: () => availableParallelism(),
    defaultDoc: '$WEB_CONCURRENCY, else the number of CPUs',
    schema: PositiveInt,
    doc:
      'The number of worker processes handling requests. ' +
      "gunicorn's rule of thumb, 2 × cores + 1, is for sync workers that block on I/O " +
      'and need spares to keep the CPUs busy; a Node worker does not block on I/O, ' +
      'so one worker per core already uses the machine. The default is the WEB_CONCURRENCY ' +
      'environment variable when set (as Heroku and other platforms set it), ' +
      'else os.availableParallelism().',
  }),
  setting({
    name: 'timeout',
    flags: ['-t', '--timeout'],
    section: 'Worker processes',
    meta: 'INT',
    type: 'int',
    default: 30,
    schema: Seconds,
    doc:
      'Workers silent for more than this many seconds are killed and restarted. ' +
      'Each worker sends the master a heartbeat while its event loop runs; a worker whose ' +
      'loop is stuck (a busy loop, a long synchronous call) stops sending it, and past the ' +
      'timeout the master logs the JavaScript stack where it is stuck and kills it. ' +
      '0 disables the heartbeat timeout.',
  }),
  setting({
    name: 'gracefulTimeout',
    flags: ['--graceful-timeout'],
    section: 'Worker processes',
    meta: 'INT',
    type: 'int',
    default: 30,
    schema: Seconds,
    doc:
      'Seconds a worker has to finish its in-flight requests after a graceful stop or restart. ' +
      'Past this the master kills the workers that are still running.',
  }),
  setting({
    name: 'keepAlive',
    flags: ['--keep-alive'],
    section: 'Worker processes',
    meta: 'INT',
    type: 'int',
    default: 2,
    schema: Seconds,
    doc:
      'Seconds an idle keep-alive connection waits for its next request before the worker closes it. ' +
      "gunicorn's default, 2, suits a proxy next to corral; behind a load balancer that reuses idle connections longer " +
      "(AWS ALB: 60 s), set it above the balancer's idle timeout, so corral never closes a connection the balancer is about to reuse. " +
      'It is also the longest a graceful stop waits for an idle client. 0 turns keep-alive off: every response says Connection: close. ' +
      "node:http's keepAliveTimeout.",
  }),
  setting({
    name: 'workerConnections',
    flags: ['--worker-connections'],
    section: 'Worker processes',
    meta: 'INT',
    type: 'int',
    default: 1000,
    schema: intAtLeast(0, 'a number of connections (0 for no limit)'),
    doc:
      'The most connections a worker holds at once (keep-alive, WebSocket and streaming ones included). ' +
      "A worker at the limit stops accepting until one closes: new connections wait in the kernel's queue for a worker with room, " +
      'and are never accepted and then dropped. 0 sets no limit. With --reuse-port, a worker at the limit keeps its own socket ' +
      '(closing it would reset the connections queued on it), so those wait for that worker. See spec/worker-limits.md.',
  }),
  setting({
    name: 'balanceSlack',
    flags: ['--balance-slack'],
    section: 'Worker processes',
    meta: 'INT',
    type: 'int',
    default: 1,
    schema: intAtLeast(0, 'a number of connections (0 to turn balancing off)'),
    doc:
      "Balanced accepts: the most loaded worker, once it holds the other workers' average plus this many connections, " +
      'stops accepting on the shared sockets until it falls back, so long-lived (keep-alive) connections spread evenly. ' +
      'A worker alone never pauses, and when every worker is at its share they all accept. 0 turns it off. ' +
      'See spec/worker-limits.md.',
  }),
  setting({
    name: 'maxRequests',
    flags: ['--max-requests'],
    section: 'Worker processes',
    meta: 'INT',
    type: 'int',
    default: 0,
    schema: intAtLeast(0, 'a number of requests (0 for no limit)'),
    doc:
      'After this many requests a worker retires: the master starts its replacement at once, and the worker stops accepting, ' +
      'finishes what it has (keep-alive clients are told Connection: close) and exits. A simple guard against memory leaks. 0 disables.',
  }),
  setting({
    name: 'maxRequestsJitter',
    flags: ['--max-requests-jitter'],
    section: 'Worker processes',
    meta: 'INT',
    type: 'int',
    default: 0,
    schema: intAtLeast(0, 'a number of requests (0 or more)'),
    doc: "Adds a random 0 to this many requests to each worker's --max-requests, so that workers do not all retire at once.",
  }),
  setting({
    name: 'maxMemory',
    flags: ['--max-memory'],
    section: 'Worker processes',
    meta: 'MB',
    type: 'int',
    default: 0,
    schema: intAtLeast(0, 'a number of megabytes (0 for no limit)'),
    doc:
      "A worker whose resident memory (RSS) passes this many megabytes retires as with --max-requests (PM2's max_memory_restart). " +
      'Checked every second. A worker idles at 60 to 100 MB before the app adds its own: a limit below that retires every worker ' +
      'a second after it starts. 0 disables.',
  }),
  setting({
    name: 'forwardedAllowIps',
    flags: ['--forwarded-allow-ips'],
    env: 'FORWARDED_ALLOW_IPS',
    section: 'Server',
    meta: 'STRING',
    type: 'string',
    default: '127.0.0.1,::1',
    schema: AllowList,
    doc:
      'The proxies trusted to say who the client is: IP addresses and networks (10.0.0.0/8), comma-separated, or * for any peer. ' +
      "From them, X-Forwarded-For gives the client address (the socket's remoteAddress, the access log's %(h)s) and " +
      "--secure-scheme-headers the scheme (https makes socket.encrypted true, so a fetch app's request.url is https). " +
      'From any other peer, X-Forwarded-For, X-Forwarded-Host, X-Forwarded-Port, X-Real-IP, Forwarded and the secure scheme headers ' +
      'are removed before the app sees the request. Unix socket peers are trusted, as in gunicorn. See spec/proxies.md.',
  }),
  setting({
    name: 'secureSchemeHeaders',
    flags: ['--secure-scheme-headers'],
    section: 'Server',
    meta: 'STRING',
    type: 'string',
    default: DEFAULT_SECURE_SCHEME_HEADERS,
    defaultDoc: "gunicorn's: X-FORWARDED-PROTOCOL=ssl, X-FORWARDED-PROTO=https, X-FORWARDED-SSL=on",
    schema: SecureSchemeHeaders,
    doc:
      'Headers, and the value of each, by which a trusted proxy (--forwarded-allow-ips) says the client used https: NAME=VALUE, comma-separated ' +
      '(in a config file also an object). Values compare case-insensitively; another value means http; ' +
      'two of these headers that disagree are answered 400. An empty string turns scheme headers off.',
  }),
  setting({
    name: 'proxyProtocol',
    flags: ['--proxy-protocol'],
    section: 'Server',
    type: 'boolean',
    default: false,
    schema: Flag,
    doc:
      "Read a PROXY protocol header (v1 or v2, as HAProxy, nginx's stream module or AWS NLB send it) at the start of each connection " +
      "from a peer in --proxy-allow-from: the client it names becomes the socket's remoteAddress and remotePort. " +
      "A connection without a header is served as it is (gunicorn's auto mode); a malformed header is answered 400 and closed; " +
      'a PROXY header from any other peer is a bad request.',
  }),
  setting({
    name: 'proxyAllowIps',
    flags: ['--proxy-allow-from', '--proxy-allow-ips'],
    section: 'Server',
    meta: 'STRING',
    type: 'string',
    default: '127.0.0.1,::1',
    schema: AllowList,
    doc: 'The peers allowed to send a PROXY protocol header: IP addresses and networks, comma-separated, or * for any. Unix socket peers always are.',
  }),
  setting({
    name: 'limitRequestLine',
    flags: ['--limit-request-line'],
    section: 'Security',
    meta: 'INT',
    type: 'int',
    default: 4094,
    schema: intAtLeast(0, 'a number of bytes (0 or more)'),
    doc:
      'The longest request line accepted, in bytes: method, target and version, without the CRLF; a longer one is answered 414. ' +
      '0 sets no limit of its own (the request head as a whole stays bounded, see --limit-request-fields). ' +
      'gunicorn silently lowers values above 8190 to 8190; corral applies them as given.',
  }),
  setting({
    name: 'limitRequestFields',
    flags: ['--limit-request-fields'],
    section: 'Security',
    meta: 'INT',
    type: 'int',
    default: 100,
    schema: intAtLeast(0, 'a number of header fields (0 or more)'),
    doc:
      'The most header fields a request may have; more are answered 431. ' +
      "0 means gunicorn's maximum, 32768. The request head as a whole is bounded as gunicorn bounds it: " +
      'the request line plus this many fields of --limit-request-field_size bytes (8190 when that is 0) each.',
  }),
  setting({
    name: 'limitRequestFieldSize',
    flags: ['--limit-request-field_size', '--limit-request-field-size'],
    section: 'Security',
    meta: 'INT',
    type: 'int',
    default: 8190,
    schema: intAtLeast(0, 'a number of bytes (0 or more)'),
    doc:
      'The largest header field accepted, in bytes, counted as gunicorn counts it: name, colon and space, value and CRLF; a larger one is answered 431. ' +
      "0 sets no limit of its own, as gunicorn's documentation says (the request head as a whole stays bounded).",
  }),
  setting({
    name: 'headersTimeout',
    flags: ['--headers-timeout'],
    section: 'Security',
    meta: 'INT',
    type: 'int',
    default: 20,
    schema: Seconds,
    doc:
      'Seconds a client has to send a complete request head (request line and headers), from when the connection opens or the request starts; past it the connection is answered 408 and closed. ' +
      "This is what stops a slowloris client that trickles header bytes to hold connections open. node:http's headersTimeout; 0 disables.",
  }),
  setting({
    name: 'requestTimeout',
    flags: ['--request-timeout'],
    section: 'Security',
    meta: 'INT',
    type: 'int',
    default: 60,
    schema: Seconds,
    doc:
      'Seconds a client has to send a whole request, body included; past it the connection is answered 408 (if no response has started) and closed. ' +
      'Raise it for large uploads from slow clients that reach corral directly. ' +
      "node:http's requestTimeout; 0 disables. --headers-timeout is capped at this value.",
  }),
  setting({
    name: 'logLevel',
    flags: ['--log-level'],
    section: 'Logging',
    meta: 'LEVEL',
    type: 'enum',
    choices: LOG_LEVELS,
    default: 'info',
    schema: Schema.Literals(LOG_LEVELS).annotate(expecting(`one of ${LOG_LEVELS.join(', ')}`)),
    doc: `How much the error log says: messages below this level are dropped. From most to least verbose: ${LOG_LEVELS.join(', ')}.`,
  }),
  setting({
    name: 'errorLogfile',
    flags: ['--error-logfile', '--log-file'],
    section: 'Logging',
    meta: 'FILE',
    type: 'string',
    default: '-',
    schema: Schema.String.check(Schema.isNonEmpty(expecting('a file path or -'))).annotate(
      expecting('a file path or -'),
    ),
    doc:
      "The error log: the master's and the workers' messages, and whatever workers write to stderr. " +
      '`-` is stderr. The file is opened for appending and reopened on USR1.',
  }),
  setting({
    name: 'accessLogfile',
    flags: ['--access-logfile'],
    section: 'Logging',
    meta: 'FILE',
    type: 'string',
    default: undefined,
    defaultDoc: 'none',
    schema: OptionalPath,
    doc:
      'The access log: one line per response, written by the workers. `-` is stdout. ' +
      'None is written by default. The file is opened for appending and reopened on USR1.',
  }),
  setting({
    name: 'accessLogformat',
    flags: ['--access-logformat'],
    section: 'Logging',
    meta: 'STRING',
    type: 'string',
    default: DEFAULT_ACCESS_LOG_FORMAT,
    schema: AccessLogFormat,
    doc:
      "The access log's line, with gunicorn's atoms written %(NAME)s: h remote address, l '-', " +
      'u user (Basic auth), t time, r request line, m method, U path, q query string, H protocol, ' +
      "s status, B body bytes, b body bytes or '-', f referer, a user agent, T seconds, M milliseconds, " +
      'D microseconds, L decimal seconds, p <pid>, {NAME}i a request header, {NAME}o a response header, ' +
      '{NAME}e an environment variable. An unknown atom is an error.',
  }),
  setting({
    name: 'accessLogJson',
    flags: ['--access-log-json'],
    section: 'Logging',
    type: 'boolean',
    default: false,
    schema: Flag,
    doc:
      'Write the access log as JSON lines: one object per response, with one key per atom of ' +
      '--access-logformat (remote_addr, user, time, request, status, bytes, referer, user_agent, …; ' +
      "req.NAME, res.NAME, env.NAME for the braced atoms). The format's literal text is left out.",
  }),
  setting({
    name: 'pid',
    flags: ['-p', '--pid'],
    section: 'Process',
    meta: 'FILE',
    type: 'string',
    default: undefined,
    defaultDoc: 'none',
    schema: OptionalPath,
    doc: "A file to write the master's PID to. None is written by default.",
  }),
  setting({
    name: 'daemon',
    flags: ['-D', '--daemon'],
    section: 'Process',
    type: 'boolean',
    default: false,
    schema: Flag,
    doc:
      'Detach from the terminal and run in the background: a new session, no terminal on stdin, stdout or stderr. ' +
      'The command returns once the master is serving (exit 0), or fails with the reason. ' +
      'Give --pid to find the master again, and --error-logfile for its log (else the log is discarded).',
  }),
  setting({
    name: 'upgrade',
    flags: ['--upgrade'],
    section: 'Process',
    meta: 'MODE',
    type: 'enum',
    choices: ['manual', 'auto'],
    default: 'manual',
    schema: Schema.Literals(['manual', 'auto']).annotate(expecting('manual or auto')),
    doc:
      'What the old master does after USR2 once the new master is ready. manual (as nginx and gunicorn): both serve ' +
      'until the operator sends WINCH then QUIT to the old master (or QUIT to the new one to roll back). ' +
      'auto: the old master stops its workers gracefully and exits by itself.',
  }),
  setting({
    name: 'name',
    flags: ['-n', '--name'],
    section: 'Process',
    meta: 'STRING',
    type: 'string',
    default: undefined,
    defaultDoc: 'none',
    schema: OptionalString,
    doc:
      'A name for the processes, as seen in ps and top: the master becomes ' +
      '"corral: master [NAME]" and its workers "corral: worker [NAME]". ' +
      'By default the app module is used.',
  }),
  setting({
    name: 'user',
    flags: ['-u', '--user'],
    section: 'Process',
    meta: 'USER',
    type: 'string',
    default: undefined,
    defaultDoc: "the master's user",
    schema: idOrName('a user name or a uid', userProblem),
    doc:
      'Run the workers as this user: a name from /etc/passwd or a numeric uid. The master keeps its own identity: ' +
      'it binds the listeners first, then starts each worker under this user, which never runs the app as root. ' +
      'Only root can switch; the app module and its files must be readable by the user.',
  }),
  setting({
    name: 'group',
    flags: ['-g', '--group'],
    section: 'Process',
    meta: 'GROUP',
    type: 'string',
    default: undefined,
    defaultDoc: "the user's primary group with --user, else the master's",
    schema: idOrName('a group name or a gid', groupProblem),
    doc:
      'Run the workers in this group: a name from /etc/group or a numeric gid. ' +
      "With --user and without --group, workers get the user's primary group (gunicorn keeps the master's).",
  }),
  setting({
    name: 'initgroups',
    flags: ['--initgroups'],
    section: 'Process',
    type: 'boolean',
    default: false,
    schema: Flag,
    doc:
      'Give the workers the supplementary groups of --user, as listed in /etc/group (initgroups(3)). ' +
      'Without it, workers started with --user or --group have no supplementary groups.',
  }),
  setting({
    name: 'umask',
    flags: ['-m', '--umask'],
    section: 'Process',
    meta: 'INT',
    type: 'string',
    default: undefined,
    defaultDoc: 'inherited',
    schema: Umask,
    doc:
      'The umask of the master and the workers, set before anything is created: it applies to unix socket files, ' +
      'the pidfile, log files and whatever the app writes. Read as gunicorn reads it: a leading 0 means octal ' +
      '(022, 0o22), 0x hex, else decimal. By default the umask corral was started with is kept.',
  }),
  setting({
    name: 'chdir',
    flags: ['--chdir'],
    section: 'Process',
    meta: 'DIR',
    type: 'string',
    default: undefined,
    defaultDoc: 'none',
    schema: OptionalPath,
    doc:
      'Change to this directory before loading the app. The config file is found from where corral was started; ' +
      'the APP, the pidfile, log files and unix sockets are then relative to DIR.',
  }),
  setting({
    name: 'env',
    flags: ['-e', '--env'],
    section: 'Process',
    meta: 'KEY=VALUE',
    type: 'list',
    default: [],
    defaultDoc: 'none',
    schema: EnvEntries,
    doc: "Set an environment variable in the master's and the workers' environment. The value may be empty or hold '='.",
  }),
  setting({
    name: 'preload',
    flags: ['--preload'],
    section: 'Process',
    type: 'boolean',
    default: false,
    schema: Flag,
    doc:
      'Import the app in the master before binding or starting workers, so that an app that cannot load stops ' +
      'corral at once (exit 4) and no worker is started. Unlike gunicorn, this shares no memory with the workers: ' +
      'Node cannot fork(), so each worker imports the app again.',
  }),
  setting({
    name: 'printConfig',
    flags: ['--print-config'],
    section: 'Debugging',
    type: 'boolean',
    default: false,
    schema: Flag,
    doc: 'Print every effective setting, its value and where it came from, then exit.',
  }),
  setting({
    name: 'checkConfig',
    flags: ['--check-config'],
    section: 'Debugging',
    type: 'boolean',
    default: false,
    schema: Flag,
    doc: 'Check the configuration and that the app loads, then exit: 0 when all is well, 2 or 4 otherwise.',
  }),
  setting({
    name: 'reload',
    flags: ['--reload'],
    section: 'Debugging',
    type: 'boolean',
    default: false,
    schema: Flag,
    doc:
      "Reload the workers when the app's source files change (for development). Watched: .ts, .mts, .cts, .js, .mjs, .cjs " +
      "and .json files in the app module's directory and below, except node_modules and dot-directories, and " +
      '--reload-extra-files. A change does what HUP does; a change that breaks the app keeps the old workers serving.',
  }),
  setting({
    name: 'reloadExtraFiles',
    flags: ['--reload-extra-file', '--reload-extra-files'],
    section: 'Debugging',
    meta: 'FILE',
    type: 'list',
    default: [],
    defaultDoc: 'none',
    schema: Schema.Array(Schema.String.check(Schema.isNonEmpty(expecting('a file path or glob')))).annotate(
      expecting('a list of file paths or globs'),
    ),
    doc: 'With --reload, also watch these files; globs are allowed (templates/**/*.html). Relative to the working directory.',
  }),
  setting({
    name: 'help',
    flags: ['-h', '--help'],
    section: 'Help',
    type: 'boolean',
    cliOnly: true,
    default: false,
    schema: Flag,
    doc: 'Show this help and exit.',
  }),
  setting({
    name: 'version',
    flags: ['-v', '--version'],
    section: 'Help',
    type: 'boolean',
    cliOnly: true,
    default: false,
    schema: Flag,
    doc: "Show corral's version and exit.",
  }),
  // Server hooks (src/hooks/hooks.ts, spec/hooks.md): functions, in a config file only.
  ...hookSettings,
] as const

type Registry = typeof registry
export type SettingName = Registry[number]['name']

type Fields = { readonly [S in Registry[number] as S['name']]: S['schema'] }

const SettingsSchema = Schema.Struct(Object.fromEntries(registry.map((s) => [s.name, s.schema])) as unknown as Fields)
/** The validated settings object. */
export type Settings = typeof SettingsSchema.Type
/** Settings as a user writes them. */
export type SettingsInput = typeof SettingsSchema.Encoded

const byName: ReadonlyMap<string, SettingSpec> = new Map(registry.map((s) => [s.name, s]))

export function findSetting(name: string): SettingSpec | undefined {
  return byName.get(name)
}

/** `-w/--workers`: how errors name a setting that came from the command line. */
export function flagsLabel(s: SettingSpec): string {
  return s.flags.join('/')
}

// ---------------------------------------------------------------------------
// Strings to values

const INT = /^[+-]?\d+$/
const TRUE = new Set(['1', 'true', 'yes', 'on'])
const FALSE = new Set(['0', 'false', 'no', 'off', ''])

/**
 * Turns a string from argv or the environment into the value the schema
 * expects. Text that cannot be converted is passed through unchanged so the
 * schema rejects it with its own "expected …, got …" message.
 */
export function fromString(s: SettingSpec, text: string): unknown {
  switch (s.type) {
    case 'int':
      return INT.test(text) ? Number(text) : text
    case 'number': {
      const n = Number(text)
      return text.trim() !== '' && Number.isFinite(n) ? n : text
    }
    case 'boolean': {
      const t = text.toLowerCase()
      return TRUE.has(t) ? true : FALSE.has(t) ? false : text
    }
    case 'list':
      return [text]
    case 'string':
    case 'enum':
    case 'hook':
      return text
  }
}

// ---------------------------------------------------------------------------
// Resolution: layers of values over env-var defaults over registry defaults

/** A source of values, e.g. the command line; later layers override earlier ones. */
export interface Layer {
  readonly values: Readonly<Record<string, unknown>>
  /** Names a setting in error messages, e.g. `-w/--workers` or `corral.config.ts: workers`. */
  readonly label: (s: SettingSpec) => string
  /** Names a key that is not a setting, e.g. `corral.config.ts: unknown setting "wrokers"`. */
  readonly unknownKey?: (key: string) => string
  /** Where its values come from, for --print-config: `command line`, `config file corral.config.ts`. */
  readonly source?: string
}

export type Resolution =
  | {
      readonly ok: true
      readonly settings: Settings
      /** Where each setting's value came from: `default`, `env WEB_CONCURRENCY`, or a layer's source. */
      readonly sources: Readonly<Record<SettingName, string>>
    }
  | { readonly ok: false; readonly errors: string[] }

const decode = Schema.decodeUnknownResult(SettingsSchema, {
  errors: 'all',
  onExcessProperty: 'error',
  reportInput: true,
})

function showInput(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v)
  // Not its source text: a config file's function may span many lines.
  if (typeof v === 'function') return 'a function'
  if (typeof v === 'object' && v !== null) {
    try {
      return JSON.stringify(v)
    } catch {
      return String(v)
    }
  }
  return String(v)
}

// The built-in formatter ignores `expected` on a type mismatch (it says
// "Expected number"); the setting's own phrase says more.
const formatIssues = SchemaIssue.makeFormatterStandardSchemaV1({
  leafHook: (issue) => {
    const expected = issue._tag === 'InvalidType' ? issue.ast.annotations?.['expected'] : undefined
    if (typeof expected !== 'string') return SchemaIssue.defaultLeafHook(issue)
    return SchemaIssue.hasInput(issue) ? `expected ${expected}, got ${showInput(issue.input)}` : `expected ${expected}`
  },
})

const lowerFirst = (s: string) => s.charAt(0).toLowerCase() + s.slice(1)

/**
 * Resolves settings from layers (lowest priority first) over env-var
 * defaults over registry defaults, validating everything at once: each
 * problem is one line naming where the bad value came from.
 */
export function resolveSettings(layers: readonly Layer[], env: NodeJS.ProcessEnv = {}): Resolution {
  // No prototype: a config file's "__proto__" key must stay a (rejected) key.
  const merged: Record<string, unknown> = Object.create(null)
  const labelOf = new Map<string, (s: SettingSpec) => string>()
  const unknownKeyLabel = new Map<string, string>()
  const sources: Record<string, string> = {}

  for (const s of registry) {
    const fromEnv = s.env === undefined ? undefined : env[s.env]
    if (s.env !== undefined && fromEnv !== undefined && fromEnv !== '') {
      const name = s.env
      merged[s.name] = fromString(s, fromEnv)
      labelOf.set(s.name, () => name)
      sources[s.name] = `env ${name}`
    } else {
      merged[s.name] = typeof s.default === 'function' ? s.default(env) : s.default
      labelOf.set(s.name, (spec) => `default for ${flagsLabel(spec)}`)
      sources[s.name] = 'default'
    }
  }
  for (const layer of layers) {
    for (const [key, value] of Object.entries(layer.values)) {
      merged[key] = value
      if (byName.has(key)) {
        labelOf.set(key, layer.label)
        sources[key] = layer.source ?? 'command line'
      } else
        unknownKeyLabel.set(
          key,
          layer.unknownKey?.(key) ?? `unknown setting ${JSON.stringify(key)}${suggestion(key, [...byName.keys()])}`,
        )
    }
  }

  const result = decode(merged)
  if (Result.isSuccess(result))
    return { ok: true, settings: result.success, sources: sources as Record<SettingName, string> }

  const lines = new Set<string>()
  for (const { path, message } of formatIssues(result.failure.issue).issues) {
    const key = String(path?.[0])
    const spec = byName.get(key)
    const unknown = unknownKeyLabel.get(key)
    if (spec === undefined) lines.add(unknown ?? `${key}: ${lowerFirst(message)}`)
    else lines.add(`${(labelOf.get(key) ?? flagsLabel)(spec)}: ${lowerFirst(message)}`)
  }
  return { ok: false, errors: [...lines] }
}

/**
 * The registry defaults alone, ignoring the environment. Throws only if the
 * registry itself is wrong, which a test catches.
 */
export function defaults(): Settings {
  const r = resolveSettings([])
  if (!r.ok) throw new Error(`invalid default settings:\n${r.errors.join('\n')}`)
  return r.settings
}

// ---------------------------------------------------------------------------
// Typo suggestions

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j)
  for (let i = 1; i <= a.length; i++) {
    const cur = [i]
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1
      cur[j] = Math.min((prev[j] ?? 0) + 1, (cur[j - 1] ?? 0) + 1, (prev[j - 1] ?? 0) + cost)
    }
    prev = cur
  }
  return prev[b.length] ?? 0
}

/** The candidate closest to `word`, if close enough to be a plausible typo or abbreviation. */
export function closest(word: string, candidates: Iterable<string>): string | undefined {
  const all = [...candidates]
  const extending = all.filter((c) => c.startsWith(word))
  if (extending.length === 1) return extending[0]
  let best: string | undefined
  let bestDistance = Infinity
  for (const c of all) {
    const d = editDistance(word.toLowerCase(), c.toLowerCase())
    if (d < bestDistance) {
      best = c
      bestDistance = d
    }
  }
  return bestDistance <= Math.max(2, Math.floor(word.length / 3)) ? best : undefined
}

/** ` (did you mean X?)`, or '' when nothing is close. */
export function suggestion(word: string, candidates: Iterable<string>): string {
  const c = closest(word, candidates)
  return c === undefined ? '' : ` (did you mean ${c}?)`
}
