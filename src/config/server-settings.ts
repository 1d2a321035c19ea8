// The settings with values: every setting corral has but the server hooks
// (src/config/hook-settings.ts), one entry each, in the order of --help and
// spec/settings.md. Adding a setting means adding one entry here; the facts
// about it are the entry's fields (src/config/setting-spec.ts).
//
// A table of its own, apart from the hooks' entries, because the hooks are
// given these settings: `ServerSettings`, the type of `server.settings` in a
// hook (src/hooks/hooks.ts), is derived from this table alone. Were it
// derived from the whole registry, the hooks' types would depend on the
// registry and the registry on the hooks' types.
import { availableParallelism } from 'node:os'
import type * as Schema from 'effect/Schema'
import { LOG_LEVELS } from '../logging/log.ts'
import { DEFAULT_ACCESS_LOG_FORMAT } from '../logging/access-log-format.ts'
import { DEFAULT_SECURE_SCHEME_HEADERS } from '../http/forwarded.ts'
import { BIND_FORMS } from '../net/binds.ts'
import { prose, setting } from './setting-spec.ts'
import {
  AccessLogFormat,
  Addresses,
  DirtyApps,
  AllowList,
  CertReqs,
  EnvEntries,
  ErrorLogPath,
  Flag,
  Group,
  HttpProtocols,
  intAtLeast,
  LogLevel,
  FileMode,
  OptionalAddress,
  OptionalInspectorAddress,
  OptionalPath,
  OptionalStatsdAddress,
  OptionalString,
  StatsdPrefix,
  DogstatsdTags,
  SocketPath,
  PathsOrGlobs,
  PositiveInt,
  Seconds,
  SecureSchemeHeaders,
  Umask,
  UPGRADE_MODES,
  UpgradeMode,
  User,
} from './values.ts'

export const serverSettings = [
  setting({
    name: 'config',
    flags: ['-c', '--config'],
    section: 'Config',
    onHup: 'kept',
    meta: 'CONFIG',
    type: 'string',
    cliOnly: true,
    default: undefined,
    defaultDoc: './corral.config.{ts,mts,cts,js,mjs,cjs} when present',
    schema: OptionalPath,
    doc: prose`
      The config file to load settings from. It is a module whose default export is an object of settings with camelCase
      keys (wrap it in defineConfig() from "corral" for types). Without this flag, the one corral.config.ts, .mts, .cts,
      .js, .mjs or .cjs in the working directory is loaded when present (two of them is an error). Its settings override
      the defaults; CORRAL_CMD_ARGS and the command line override it. HUP reads it again.
    `,
  }),
  setting({
    name: 'noConfig',
    flags: ['--no-config'],
    section: 'Config',
    onHup: 'kept',
    type: 'boolean',
    cliOnly: true,
    default: false,
    schema: Flag,
    doc: prose`
      Load no config file: corral.config.* in the working directory is not looked for (on HUP either). Not with
      -c/--config.
    `,
  }),
  setting({
    name: 'bind',
    flags: ['-b', '--bind'],
    section: 'Server',
    onHup: 'kept',
    meta: 'ADDRESS',
    type: 'list',
    // $PORT as gunicorn reads it: platforms (Heroku, Cloud Run, Render) set it and expect every interface.
    default: (env) => [env.PORT ? `0.0.0.0:${env.PORT}` : '127.0.0.1:8000'],
    defaultDoc: '127.0.0.1:8000, or 0.0.0.0:$PORT when PORT is set',
    defaultEnv: 'PORT',
    schema: Addresses,
    doc: prose`
      The socket to listen on; repeat the flag to listen on several. An address is ${BIND_FORMS}: a TCP host (IPv4
      address or hostname) and port, a bracketed IPv6 address and port, a unix socket path, or a file descriptor already
      open and inherited from the parent process. With no address configured, corral listens on 127.0.0.1:8000, or, when
      the PORT environment variable is set (as Heroku, Cloud Run, Render and others set it), on 0.0.0.0:$PORT, every
      interface, as gunicorn does.
    `,
  }),
  setting({
    name: 'backlog',
    flags: ['--backlog'],
    section: 'Server',
    onHup: 'kept',
    meta: 'INT',
    type: 'int',
    default: 2048,
    schema: PositiveInt,
    doc: prose`
      The most connections the kernel queues on each listening socket before one is accepted (listen(2) backlog); past
      it, new connections wait or fail. The kernel caps it at net.core.somaxconn. Applied only at start.
    `,
  }),
  setting({
    name: 'reusePort',
    flags: ['--reuse-port'],
    section: 'Server',
    onHup: 'kept',
    type: 'boolean',
    default: false,
    schema: Flag,
    doc: prose`
      Give each worker its own listening socket for every TCP address (SO_REUSEPORT), and let the kernel spread new
      connections over them, instead of one socket shared by all workers. The trade-off: connections queued on a
      worker's socket when that worker stops (a reload, a crash, max requests) are reset. unix sockets and inherited
      ones stay shared. Applied only at start. See spec/listeners.md.
    `,
  }),
  setting({
    name: 'httpProtocols',
    flags: ['--http-protocols'],
    section: 'Server',
    onHup: 'applied',
    meta: 'STRING',
    type: 'string',
    default: 'h1',
    schema: HttpProtocols,
    doc: prose`
      The HTTP versions served, comma-separated: h1 (HTTP/1.1), h2 (HTTP/2, over TLS only, chosen by ALPN). With h2,h1
      one port serves both: a client that offers h2 gets it, the others HTTP/1.1, and the app is the same. h2 needs
      --certfile and --keyfile; Express apps cannot run on HTTP/2 and are refused at boot. See spec/listeners.md.
    `,
  }),
  setting({
    name: 'certfile',
    flags: ['--certfile'],
    section: 'TLS',
    onHup: 'applied',
    meta: 'FILE',
    type: 'string',
    default: undefined,
    defaultDoc: 'none',
    schema: OptionalPath,
    doc: prose`
      A PEM certificate (chain) file: with it (and --keyfile) every listener serves HTTPS. Each worker reads the files
      when it starts, so after renewing them a HUP (new workers) serves the new ones with no restart.
    `,
  }),
  setting({
    name: 'keyfile',
    flags: ['--keyfile'],
    section: 'TLS',
    onHup: 'applied',
    meta: 'FILE',
    type: 'string',
    default: undefined,
    defaultDoc: 'none',
    schema: OptionalPath,
    doc: prose`
      The PEM private key of --certfile. May be left out when --certfile holds the key too. The workers read it, so it
      must be readable by --user.
    `,
  }),
  setting({
    name: 'caCerts',
    flags: ['--ca-certs'],
    section: 'TLS',
    onHup: 'applied',
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
    onHup: 'applied',
    meta: 'INT',
    type: 'int',
    default: 0,
    schema: CertReqs,
    doc: prose`
      Client certificates, as gunicorn numbers it: 0 none asked; 1 optional (asked for; a client may send none, but one
      that does not verify against --ca-certs ends the handshake); 2 required (no verified certificate, no connection).
      The app sees the certificate with req.socket.getPeerCertificate().
    `,
  }),
  setting({
    name: 'ciphers',
    flags: ['--ciphers'],
    section: 'TLS',
    onHup: 'applied',
    meta: 'STRING',
    type: 'string',
    default: undefined,
    defaultDoc: "Node's default",
    schema: OptionalString,
    doc: prose`
      The TLS cipher suites allowed, in OpenSSL cipher-list format (e.g. ECDHE+AESGCM:!aNULL); TLS 1.3 suite names
      (TLS_AES_256_GCM_SHA384) may be listed too. A list that matches no cipher is an error.
    `,
  }),
  setting({
    name: 'workers',
    flags: ['-w', '--workers'],
    env: 'WEB_CONCURRENCY',
    section: 'Worker processes',
    onHup: 'applied',
    meta: 'INT',
    type: 'int',
    default: () => availableParallelism(),
    defaultDoc: '$WEB_CONCURRENCY, else the number of CPUs',
    schema: PositiveInt,
    doc: prose`
      The number of worker processes handling requests. gunicorn's rule of thumb, 2 × cores + 1, is for sync workers
      that block on I/O and need spares to keep the CPUs busy; a Node worker does not block on I/O, so one worker per
      core already uses the machine. The default is the WEB_CONCURRENCY environment variable when set (as Heroku and
      other platforms set it), else os.availableParallelism().
    `,
  }),
  setting({
    name: 'standby',
    flags: ['--standby'],
    section: 'Worker processes',
    onHup: 'applied',
    meta: 'INT',
    type: 'int',
    default: 0,
    schema: intAtLeast(0, 'a number of standby workers (0 for none)'),
    doc: prose`
      Spare workers kept beside the --workers serving ones: each has imported the app (its import side effects have
      run) and waits without accepting. When a serving worker exits for any reason (a crash, --timeout, --max-requests,
      --max-memory, corral ctl worker kill), a spare takes its place at once, without a process start, and a new spare
      is started behind it. Each costs what a loaded worker costs, less its requests' memory: 13–18 MiB private
      with a small app. 0 (the default) keeps none. See spec/standby.md.
    `,
  }),
  setting({
    name: 'timeout',
    flags: ['-t', '--timeout'],
    section: 'Worker processes',
    onHup: 'applied',
    meta: 'INT',
    type: 'int',
    default: 30,
    schema: Seconds,
    doc: prose`
      Workers silent for more than this many seconds are killed and restarted. Each worker sends the master a heartbeat
      while its event loop runs; a worker whose loop is stuck (a busy loop, a long synchronous call) stops sending it,
      and past the timeout the master logs the JavaScript stack where it is stuck and kills it. 0 disables the heartbeat
      timeout.
    `,
  }),
  setting({
    name: 'gracefulTimeout',
    flags: ['--graceful-timeout'],
    section: 'Worker processes',
    onHup: 'applied',
    meta: 'INT',
    type: 'int',
    default: 30,
    schema: Seconds,
    doc: prose`
      Seconds a worker has to finish its in-flight requests after a graceful stop or restart. Past this the master kills
      the workers that are still running.
    `,
  }),
  setting({
    name: 'keepAlive',
    flags: ['--keep-alive'],
    section: 'Worker processes',
    onHup: 'applied',
    meta: 'INT',
    type: 'int',
    default: 2,
    schema: Seconds,
    doc: prose`
      Seconds an idle keep-alive connection waits for its next request before the worker closes it. gunicorn's default,
      2, suits a proxy next to corral; behind a load balancer that reuses idle connections longer (AWS ALB: 60 s), set
      it above the balancer's idle timeout, so corral never closes a connection the balancer is about to reuse. It is
      also the longest a graceful stop waits for an idle client. 0 turns keep-alive off: every response says Connection:
      close. node:http's keepAliveTimeout.
    `,
  }),
  setting({
    name: 'workerConnections',
    flags: ['--worker-connections'],
    section: 'Worker processes',
    onHup: 'applied',
    meta: 'INT',
    type: 'int',
    default: 1000,
    schema: intAtLeast(0, 'a number of connections (0 for no limit)'),
    doc: prose`
      The most connections a worker holds at once (keep-alive, WebSocket and streaming ones included). A worker at the
      limit stops accepting until one closes: new connections wait in the kernel's queue for a worker with room, and are
      never accepted and then dropped. 0 sets no limit. With --reuse-port, a worker at the limit keeps its own socket
      (closing it would reset the connections queued on it), so those wait for that worker. See spec/worker-limits.md.
    `,
  }),
  setting({
    name: 'balanceSlack',
    flags: ['--balance-slack'],
    section: 'Worker processes',
    onHup: 'applied',
    meta: 'INT',
    type: 'int',
    default: 1,
    schema: intAtLeast(0, 'a number of connections (0 to turn balancing off)'),
    doc: prose`
      Balanced accepts: the most loaded worker, once it holds the other workers' average plus this many connections,
      stops accepting on the shared sockets until it falls back, so long-lived (keep-alive) connections spread evenly. A
      worker alone never pauses, and when every worker is at its share they all accept. 0 turns it off. See
      spec/worker-limits.md.
    `,
  }),
  setting({
    name: 'maxRequests',
    flags: ['--max-requests'],
    section: 'Worker processes',
    onHup: 'applied',
    meta: 'INT',
    type: 'int',
    default: 0,
    schema: intAtLeast(0, 'a number of requests (0 for no limit)'),
    doc: prose`
      After this many requests a worker retires: the master starts its replacement at once, and the worker stops
      accepting, finishes what it has (keep-alive clients are told Connection: close) and exits. A simple guard against
      memory leaks. 0 disables.
    `,
  }),
  setting({
    name: 'maxRequestsJitter',
    flags: ['--max-requests-jitter'],
    section: 'Worker processes',
    onHup: 'applied',
    meta: 'INT',
    type: 'int',
    default: 0,
    schema: intAtLeast(0, 'a number of requests (0 or more)'),
    doc: prose`
      Adds a random 0 to this many requests to each worker's --max-requests, so that workers do not all retire at once.
    `,
  }),
  setting({
    name: 'maxMemory',
    flags: ['--max-memory'],
    section: 'Worker processes',
    onHup: 'applied',
    meta: 'MB',
    type: 'int',
    default: 0,
    schema: intAtLeast(0, 'a number of megabytes (0 for no limit)'),
    doc: prose`
      A worker whose resident memory (RSS) passes this many megabytes retires as with --max-requests (PM2's
      max_memory_restart). Checked every second. A worker idles at 60 to 100 MB before the app adds its own: a limit
      below that retires every worker a second after it starts. 0 disables.
    `,
  }),
  setting({
    name: 'dirtyApps',
    flags: ['--dirty-app'],
    section: 'Worker processes',
    onHup: 'applied',
    meta: 'NAME=MODULE[:EXPORT][:N]',
    type: 'list',
    default: [],
    defaultDoc: 'none',
    schema: DirtyApps,
    doc: prose`
      An app for the dirty pool (spec/dirty.md): processes beside the HTTP workers, supervised by the master, for heavy or
      blocking work that HTTP workers call with dirty(NAME).call(method, ...args) from "corral". MODULE exports (as
      default, or as EXPORT) an object with methods or a class, with optional init() and close(); it is loaded once in
      each dirty worker that carries it: N of them (the first N), or all without N. Repeatable.
    `,
  }),
  setting({
    name: 'dirtyWorkers',
    flags: ['--dirty-workers'],
    section: 'Worker processes',
    onHup: 'applied',
    meta: 'INT',
    type: 'int',
    default: 0,
    defaultDoc: '0: the largest N of the --dirty-app entries, at least 1 when there is one',
    schema: intAtLeast(0, 'a whole number (0 or more)'),
    doc: prose`
      The number of dirty worker processes, when there is a --dirty-app. Never fewer than the largest N of the apps;
      corral ctl dirty add|remove changes it while running.
    `,
  }),
  setting({
    name: 'dirtyTimeout',
    flags: ['--dirty-timeout'],
    section: 'Worker processes',
    onHup: 'applied',
    meta: 'INT',
    type: 'int',
    default: 300,
    schema: Seconds,
    doc: prose`
      Seconds a dirty call may run. Past it the call fails with DIRTY_TIMEOUT and the dirty worker running it (or one
      whose event loop is stuck that long) is killed and replaced. A call's own { timeout } may be shorter. 0 disables it.
    `,
  }),
  setting({
    name: 'dirtyGracefulTimeout',
    flags: ['--dirty-graceful-timeout'],
    section: 'Worker processes',
    onHup: 'applied',
    meta: 'INT',
    type: 'int',
    default: 30,
    schema: Seconds,
    doc: prose`
      Seconds a dirty worker has to finish its calls in flight when it is stopped (a reload, dirty remove, the master
      stopping); past this it is killed.
    `,
  }),
  setting({
    name: 'dirtyConcurrency',
    flags: ['--dirty-concurrency'],
    section: 'Worker processes',
    onHup: 'applied',
    meta: 'INT',
    type: 'int',
    default: 1,
    schema: PositiveInt,
    doc: prose`
      Calls a dirty worker runs at once. 1 suits blocking work; an app whose methods await (I/O, native threads) may
      take more. Calls past it wait in the dirty worker, their timeout running.
    `,
  }),
  setting({
    name: 'forwardedAllowIps',
    flags: ['--forwarded-allow-ips'],
    env: 'FORWARDED_ALLOW_IPS',
    section: 'Server',
    onHup: 'applied',
    meta: 'STRING',
    type: 'string',
    default: '127.0.0.1,::1',
    schema: AllowList,
    doc: prose`
      The proxies trusted to say who the client is: IP addresses and networks (10.0.0.0/8), comma-separated, or * for
      any peer. From them, X-Forwarded-For gives the client address (the socket's remoteAddress, the access log's %(h)s)
      and --secure-scheme-headers the scheme (https makes socket.encrypted true, so a fetch app's request.url is https).
      From any other peer, X-Forwarded-For, X-Forwarded-Host, X-Forwarded-Port, X-Real-IP, Forwarded and the secure
      scheme headers are removed before the app sees the request. Unix socket peers are trusted, as in gunicorn. See
      spec/proxies.md.
    `,
  }),
  setting({
    name: 'secureSchemeHeaders',
    flags: ['--secure-scheme-headers'],
    section: 'Server',
    onHup: 'applied',
    meta: 'STRING',
    type: 'string',
    default: DEFAULT_SECURE_SCHEME_HEADERS,
    defaultDoc: "gunicorn's: X-FORWARDED-PROTOCOL=ssl, X-FORWARDED-PROTO=https, X-FORWARDED-SSL=on",
    schema: SecureSchemeHeaders,
    doc: prose`
      Headers, and the value of each, by which a trusted proxy (--forwarded-allow-ips) says the client used https:
      NAME=VALUE, comma-separated (in a config file also an object). Values compare case-insensitively; another value
      means http; two of these headers that disagree are answered 400. An empty string turns scheme headers off.
    `,
  }),
  setting({
    name: 'proxyProtocol',
    flags: ['--proxy-protocol'],
    section: 'Server',
    onHup: 'applied',
    type: 'boolean',
    default: false,
    schema: Flag,
    doc: prose`
      Read a PROXY protocol header (v1 or v2, as HAProxy, nginx's stream module or AWS NLB send it) at the start of each
      connection from a peer in --proxy-allow-from: the client it names becomes the socket's remoteAddress and
      remotePort. A connection without a header is served as it is (gunicorn's auto mode); a malformed header is
      answered 400 and closed; a PROXY header from any other peer is a bad request.
    `,
  }),
  setting({
    name: 'proxyAllowIps',
    flags: ['--proxy-allow-from', '--proxy-allow-ips'],
    section: 'Server',
    onHup: 'applied',
    meta: 'STRING',
    type: 'string',
    default: '127.0.0.1,::1',
    schema: AllowList,
    doc: prose`
      The peers allowed to send a PROXY protocol header: IP addresses and networks, comma-separated, or * for any. Unix
      socket peers always are.
    `,
  }),
  setting({
    name: 'stashMaxBytes',
    flags: ['--stash-max-bytes'],
    section: 'Server',
    onHup: 'kept',
    meta: 'INT',
    type: 'int',
    default: 64 * 1024 * 1024,
    defaultDoc: '67108864 (64 MiB)',
    schema: intAtLeast(1, 'a number of bytes (1 or more)'),
    doc: prose`
      The most the stash (import { stash } from 'corral', spec/stash.md) holds: the bytes of its keys and of its values
      as serialized. A write that would pass it fails with a STASH_FULL error and changes nothing; expired entries are
      freed first. Read at start (a USR2 applies a new value).
    `,
  }),
  setting({
    name: 'limitRequestLine',
    flags: ['--limit-request-line'],
    section: 'Security',
    onHup: 'applied',
    meta: 'INT',
    type: 'int',
    default: 4094,
    schema: intAtLeast(0, 'a number of bytes (0 or more)'),
    doc: prose`
      The longest request line accepted, in bytes: method, target and version, without the CRLF; a longer one is
      answered 414. 0 sets no limit of its own (the request head as a whole stays bounded, see --limit-request-fields).
      gunicorn silently lowers values above 8190 to 8190; corral applies them as given.
    `,
  }),
  setting({
    name: 'limitRequestFields',
    flags: ['--limit-request-fields'],
    section: 'Security',
    onHup: 'applied',
    meta: 'INT',
    type: 'int',
    default: 100,
    schema: intAtLeast(0, 'a number of header fields (0 or more)'),
    doc: prose`
      The most header fields a request may have; more are answered 431. 0 means gunicorn's maximum, 32768. The request
      head as a whole is bounded as gunicorn bounds it: the request line plus this many fields of
      --limit-request-field_size bytes (8190 when that is 0) each.
    `,
  }),
  setting({
    name: 'limitRequestFieldSize',
    flags: ['--limit-request-field_size', '--limit-request-field-size'],
    section: 'Security',
    onHup: 'applied',
    meta: 'INT',
    type: 'int',
    default: 8190,
    schema: intAtLeast(0, 'a number of bytes (0 or more)'),
    doc: prose`
      The largest header field accepted, in bytes, counted as gunicorn counts it: name, colon and space, value and CRLF;
      a larger one is answered 431. 0 sets no limit of its own, as gunicorn's documentation says (the request head as a
      whole stays bounded).
    `,
  }),
  setting({
    name: 'headersTimeout',
    flags: ['--headers-timeout'],
    section: 'Security',
    onHup: 'applied',
    meta: 'INT',
    type: 'int',
    default: 20,
    schema: Seconds,
    doc: prose`
      Seconds a client has to send a complete request head (request line and headers), from when the connection opens or
      the request starts; past it the connection is answered 408 and closed. This is what stops a slowloris client that
      trickles header bytes to hold connections open. node:http's headersTimeout; 0 disables.
    `,
  }),
  setting({
    name: 'requestTimeout',
    flags: ['--request-timeout'],
    section: 'Security',
    onHup: 'applied',
    meta: 'INT',
    type: 'int',
    default: 60,
    schema: Seconds,
    doc: prose`
      Seconds a client has to send a whole request, body included; past it the connection is answered 408 (if no
      response has started) and closed. Raise it for large uploads from slow clients that reach corral directly.
      node:http's requestTimeout; 0 disables. --headers-timeout is capped at this value.
    `,
  }),
  setting({
    name: 'logLevel',
    flags: ['--log-level'],
    section: 'Logging',
    onHup: 'applied',
    meta: 'LEVEL',
    type: 'enum',
    choices: LOG_LEVELS,
    default: 'info',
    schema: LogLevel,
    doc: `How much the error log says: messages below this level are dropped. From most to least verbose: ${LOG_LEVELS.join(', ')}.`,
  }),
  setting({
    name: 'errorLogfile',
    flags: ['--error-logfile', '--log-file'],
    section: 'Logging',
    onHup: 'kept',
    meta: 'FILE',
    type: 'string',
    default: '-',
    schema: ErrorLogPath,
    doc: prose`
      The error log: the master's and the workers' messages, and whatever workers write to stderr. \`-\` is stderr. The
      file is opened for appending and reopened on USR1.
    `,
  }),
  setting({
    name: 'accessLogfile',
    flags: ['--access-logfile'],
    section: 'Logging',
    onHup: 'applied',
    meta: 'FILE',
    type: 'string',
    default: undefined,
    defaultDoc: 'none',
    schema: OptionalPath,
    doc: prose`
      The access log: one line per response, written by the workers. \`-\` is stdout. None is written by default. The
      file is opened for appending and reopened on USR1.
    `,
  }),
  setting({
    name: 'accessLogformat',
    flags: ['--access-logformat'],
    section: 'Logging',
    onHup: 'applied',
    meta: 'STRING',
    type: 'string',
    default: DEFAULT_ACCESS_LOG_FORMAT,
    schema: AccessLogFormat,
    doc: prose`
      The access log's line, with gunicorn's atoms written %(NAME)s: h remote address, l '-', u user (Basic auth), t
      time, r request line, m method, U path, q query string, H protocol, s status, B body bytes, b body bytes or '-', f
      referer, a user agent, T seconds, M milliseconds, D microseconds, L decimal seconds, p <pid>, {NAME}i a request
      header, {NAME}o a response header, {NAME}e an environment variable. An unknown atom is an error.
    `,
  }),
  setting({
    name: 'accessLogJson',
    flags: ['--access-log-json'],
    section: 'Logging',
    onHup: 'applied',
    type: 'boolean',
    default: false,
    schema: Flag,
    doc: prose`
      Write the access log as JSON lines: one object per response, with one key per atom of --access-logformat
      (remote_addr, user, time, request, status, bytes, referer, user_agent, …; req.NAME, res.NAME, env.NAME for the
      braced atoms). The format's literal text is left out.
    `,
  }),
  setting({
    name: 'pid',
    flags: ['-p', '--pid'],
    section: 'Process',
    onHup: 'kept',
    meta: 'FILE',
    type: 'string',
    default: undefined,
    defaultDoc: 'none',
    schema: OptionalPath,
    doc: "A file to write the master's PID to. None is written by default.",
  }),
  setting({
    name: 'controlSocket',
    flags: ['--control-socket'],
    section: 'Process',
    onHup: 'kept',
    meta: 'PATH',
    type: 'string',
    default: './corral.ctl',
    schema: SocketPath,
    doc: prose`
      The unix socket on which the master answers \`corral ctl\` (spec/control.md). A socket a live master answers on is
      never taken over: a second corral in the same directory warns and runs without one. A stale one is replaced; the
      file is removed on exit. During a USR2 upgrade the old master's moves to PATH.2.
    `,
  }),
  setting({
    name: 'controlSocketMode',
    flags: ['--control-socket-mode'],
    section: 'Process',
    onHup: 'kept',
    meta: 'MODE',
    type: 'string',
    default: '0600',
    schema: FileMode,
    doc: prose`
      The file mode of the control socket: who may connect to it is who may steer corral. The default lets only its
      owner.
    `,
  }),
  setting({
    name: 'noControlSocket',
    flags: ['--no-control-socket'],
    section: 'Process',
    onHup: 'kept',
    type: 'boolean',
    default: false,
    schema: Flag,
    doc: 'Open no control socket: `corral ctl` cannot reach this master; signals still steer it.',
  }),
  setting({
    name: 'metricsBind',
    flags: ['--metrics-bind'],
    section: 'Process',
    onHup: 'kept',
    meta: 'ADDRESS',
    type: 'string',
    default: undefined,
    defaultDoc: 'none (off)',
    schema: OptionalAddress,
    doc: prose`
      Serve Prometheus metrics at /metrics, and /healthz and /readyz for load balancers and probes, on this address
      (HOST:PORT or unix:PATH), from the master. /readyz answers 503 from the moment a drain, WINCH or shutdown begins.
      See spec/metrics.md.
    `,
  }),
  setting({
    name: 'metricsPerWorker',
    flags: ['--metrics-per-worker'],
    section: 'Process',
    onHup: 'kept',
    type: 'boolean',
    default: false,
    schema: Flag,
    doc: prose`
      With --metrics-bind: also serve corral_worker_* series (RSS, CPU seconds, requests, in flight, connections,
      heartbeat age, generation) with a worker label, one per live worker; a worker's series go when it does.
    `,
  }),
  setting({
    name: 'statsdHost',
    flags: ['--statsd-host'],
    section: 'Logging',
    onHup: 'kept',
    meta: 'HOST:PORT',
    type: 'string',
    default: undefined,
    defaultDoc: 'none (off)',
    schema: OptionalStatsdAddress,
    doc: prose`
      Send StatsD metrics over UDP to this address (HOST:PORT or [IPV6]:PORT), under gunicorn's names with corral for
      gunicorn: corral.requests, corral.request.duration, corral.request.status.CODE, corral.workers, corral.log.LEVEL.
      Batched, never waited for: nothing listening costs no request. See spec/metrics.md.
    `,
  }),
  setting({
    name: 'statsdPrefix',
    flags: ['--statsd-prefix'],
    section: 'Logging',
    onHup: 'kept',
    meta: 'STRING',
    type: 'string',
    default: '',
    defaultDoc: 'none',
    schema: StatsdPrefix,
    doc: 'A prefix for the StatsD metric names (a dot is added): `--statsd-prefix app` sends app.corral.requests.',
  }),
  setting({
    name: 'dogstatsdTags',
    flags: ['--dogstatsd-tags'],
    section: 'Logging',
    onHup: 'kept',
    meta: 'TAGS',
    type: 'string',
    default: '',
    defaultDoc: 'none',
    schema: DogstatsdTags,
    doc: prose`
      DogStatsD tags added to every StatsD metric, comma-separated: \`env:prod,service:shop\` (sent as |#env:prod,
      service:shop).
    `,
  }),
  setting({
    name: 'inspector',
    flags: ['--inspector'],
    section: 'Process',
    onHup: 'kept',
    meta: '[HOST:]PORT',
    type: 'string',
    default: undefined,
    defaultDoc: 'none (off)',
    schema: OptionalInspectorAddress,
    doc: prose`
      Development: serve the live statechart inspector from the master on this address (loopback: 127.0.0.1 when no
      HOST is given). The URL, with a random token, is logged at start. Another address than loopback needs
      --inspector-allow-remote. See spec/inspector.md.
    `,
  }),
  setting({
    name: 'inspectorAllowRemote',
    flags: ['--inspector-allow-remote'],
    section: 'Process',
    onHup: 'kept',
    type: 'boolean',
    default: false,
    schema: Flag,
    doc: 'Let --inspector listen on an address other than loopback: whoever holds the token can stop corral.',
  }),
  setting({
    name: 'daemon',
    flags: ['-D', '--daemon'],
    section: 'Process',
    onHup: 'kept',
    type: 'boolean',
    default: false,
    schema: Flag,
    doc: prose`
      Detach from the terminal and run in the background: a new session, no terminal on stdin, stdout or stderr. The
      command returns once the master is serving (exit 0), or fails with the reason. Give --pid to find the master
      again, and --error-logfile for its log (else the log is discarded).
    `,
  }),
  setting({
    name: 'upgrade',
    flags: ['--upgrade'],
    section: 'Process',
    onHup: 'kept',
    meta: 'MODE',
    type: 'enum',
    choices: UPGRADE_MODES,
    default: 'manual',
    schema: UpgradeMode,
    doc: prose`
      What the old master does after USR2 once the new master is ready. manual (as nginx and gunicorn): both serve until
      the operator sends WINCH then QUIT to the old master (or QUIT to the new one to roll back). auto: the old master
      stops its workers gracefully and exits by itself.
    `,
  }),
  setting({
    name: 'name',
    flags: ['-n', '--name'],
    section: 'Process',
    onHup: 'kept',
    meta: 'STRING',
    type: 'string',
    default: undefined,
    defaultDoc: 'none',
    schema: OptionalString,
    doc: prose`
      A name for the processes, as seen in ps and top: the master becomes "corral: master [NAME]" and its workers
      "corral: worker [NAME]". By default the app module is used.
    `,
  }),
  setting({
    name: 'user',
    flags: ['-u', '--user'],
    section: 'Process',
    onHup: 'kept',
    meta: 'USER',
    type: 'string',
    default: undefined,
    defaultDoc: "the master's user",
    schema: User,
    doc: prose`
      Run the workers as this user: a name from /etc/passwd or a numeric uid. The master keeps its own identity: it
      binds the listeners first, then starts each worker under this user, which never runs the app as root. Only root
      can switch; the app module and its files must be readable by the user.
    `,
  }),
  setting({
    name: 'group',
    flags: ['-g', '--group'],
    section: 'Process',
    onHup: 'kept',
    meta: 'GROUP',
    type: 'string',
    default: undefined,
    defaultDoc: "the user's primary group with --user, else the master's",
    schema: Group,
    doc: prose`
      Run the workers in this group: a name from /etc/group or a numeric gid. With --user and without --group, workers
      get the user's primary group (gunicorn keeps the master's).
    `,
  }),
  setting({
    name: 'initgroups',
    flags: ['--initgroups'],
    section: 'Process',
    onHup: 'kept',
    type: 'boolean',
    default: false,
    schema: Flag,
    doc: prose`
      Give the workers the supplementary groups of --user, as listed in /etc/group (initgroups(3)). Without it, workers
      started with --user or --group have no supplementary groups.
    `,
  }),
  setting({
    name: 'umask',
    flags: ['-m', '--umask'],
    section: 'Process',
    onHup: 'kept',
    meta: 'INT',
    type: 'string',
    default: undefined,
    defaultDoc: 'inherited',
    schema: Umask,
    doc: prose`
      The umask of the master and the workers, set before anything is created: it applies to unix socket files, the
      pidfile, log files and whatever the app writes. Read as gunicorn reads it: a leading 0 means octal (022, 0o22), 0x
      hex, else decimal. By default the umask corral was started with is kept.
    `,
  }),
  setting({
    name: 'chdir',
    flags: ['--chdir'],
    section: 'Process',
    onHup: 'kept',
    meta: 'DIR',
    type: 'string',
    default: undefined,
    defaultDoc: 'none',
    schema: OptionalPath,
    doc: prose`
      Change to this directory before loading the app. The config file is found from where corral was started; the APP,
      the pidfile, log files and unix sockets are then relative to DIR.
    `,
  }),
  setting({
    name: 'env',
    flags: ['-e', '--env'],
    section: 'Process',
    onHup: 'kept',
    meta: 'KEY=VALUE',
    type: 'list',
    default: [],
    defaultDoc: 'none',
    schema: EnvEntries,
    doc: prose`
      Set an environment variable in the master's and the workers' environment. The value may be empty or hold '='.
    `,
  }),
  setting({
    name: 'preload',
    flags: ['--preload'],
    section: 'Process',
    onHup: 'kept',
    type: 'boolean',
    default: false,
    schema: Flag,
    doc: prose`
      Import the app in the master before binding or starting workers, so that an app that cannot load stops corral at
      once (exit 4) and no worker is started. Unlike gunicorn, this shares no memory with the workers: Node cannot
      fork(), so each worker imports the app again.
    `,
  }),
  setting({
    name: 'printConfig',
    flags: ['--print-config'],
    section: 'Debugging',
    onHup: 'kept',
    invocationOnly: true,
    type: 'boolean',
    default: false,
    schema: Flag,
    doc: 'Print every effective setting, its value and where it came from, then exit.',
  }),
  setting({
    name: 'checkConfig',
    flags: ['--check-config'],
    section: 'Debugging',
    onHup: 'kept',
    invocationOnly: true,
    type: 'boolean',
    default: false,
    schema: Flag,
    doc: 'Check the configuration and that the app loads, then exit: 0 when all is well, 2 or 4 otherwise.',
  }),
  setting({
    name: 'reload',
    flags: ['--reload'],
    section: 'Debugging',
    onHup: 'kept',
    type: 'boolean',
    default: false,
    schema: Flag,
    doc: prose`
      Reload the workers when the app's source files change (for development). Watched: .ts, .mts, .cts, .js, .mjs, .cjs
      and .json files in the app module's directory and below, except node_modules and dot-directories, and
      --reload-extra-files. A change does what HUP does; a change that breaks the app keeps the old workers serving.
    `,
  }),
  setting({
    name: 'reloadExtraFiles',
    flags: ['--reload-extra-file', '--reload-extra-files'],
    section: 'Debugging',
    onHup: 'kept',
    meta: 'FILE',
    type: 'list',
    default: [],
    defaultDoc: 'none',
    schema: PathsOrGlobs,
    doc: prose`
      With --reload, also watch these files; globs are allowed (templates/**/*.html). Relative to the working directory.
    `,
  }),
  setting({
    name: 'help',
    flags: ['-h', '--help'],
    section: 'Help',
    onHup: 'kept',
    invocationOnly: true,
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
    onHup: 'kept',
    invocationOnly: true,
    type: 'boolean',
    cliOnly: true,
    default: false,
    schema: Flag,
    doc: "Show corral's version and exit.",
  }),
] as const

type Fields = { readonly [S in (typeof serverSettings)[number] as S['name']]: S['schema'] }
/** Every setting's value, as resolved: what hooks see as `server.settings` and what a worker is started with. */
export type ServerSettings = Schema.Struct<Fields>['Type']
