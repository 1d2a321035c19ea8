// A worker process: the runtime around machines/worker.ts. It loads the app,
// serves the listeners it inherited as fds, heartbeats, and drains on TERM.
// Nothing here runs per request except node:http and the app itself.
import type { IncomingMessage, Server, ServerOptions } from 'node:http'
import { Server as NetServer, type AddressInfo } from 'node:net'
import type { Duplex } from 'node:stream'
import { fileURLToPath } from 'node:url'
import { createActor } from 'xstate'
import { workerMachine, type WorkerEvent } from '../../machines/worker.ts'
import {
  AppLoadError,
  importApp,
  isServer,
  nestServer,
  parseAppSpec,
  resolveApp,
  toHandler,
  unwrapApp,
  type Handler,
} from '../http/app.ts'
import { addressInfo, appServer, catchListen, corralServers, type AppServer } from '../http/app-server.ts'
import { createLogger } from '../logging/log.ts'
import { withAccessLog } from '../logging/access-log.ts'
import { closeLogFiles, reopenLogFiles } from '../logging/log-file.ts'
import { findUpgrade, type AppUpgrade } from '../http/websocket-upgrade.ts'
import { listenOnFd, listenReusePort } from '../net/listeners.ts'
import { createWebServer, goAway, h2Refusal, loadTls } from '../http/tls.ts'
import { finishPrivilegeDrop } from '../process/privileges.ts'
import { guardRequests, guardServer, guardUpgrades, httpServerOptions } from '../http/guard.ts'
import { WORKER_ENV, type WorkerMessage, type WorkerOptions } from '../protocol/master-worker.ts'
import { APP_LOAD_ERROR, BOOT_ERROR, RUNTIME_ERROR, USAGE_ERROR } from '../protocol/exit-codes.ts'
import { createWorkerHooks } from '../hooks/worker-hooks.ts'
import { forwardedRequests } from '../http/forwarded.ts'
import { installProxyProtocol } from '../http/proxy-protocol.ts'
import { createWorkerLimits, keepAliveOptions } from './limits.ts'
import { createRequestStats } from './request-stats.ts'
import { countingLogLines, createStatsd } from '../net/statsd.ts'
import { withStatsd } from './statsd-requests.ts'
import { serveAppMetrics } from './app-metrics.ts'

const options = JSON.parse(process.env[WORKER_ENV] ?? 'null') as WorkerOptions | null
if (!options) {
  process.stderr.write('corral: this module is a corral worker and is started by the corral master\n')
  process.exit(USAGE_ERROR)
}
// The app should see the environment the user gave corral, not corral's plumbing.
delete process.env[WORKER_ENV]
process.title = `corral: worker [${options.name}]`

const { settings } = options
// --statsd-host (src/net/statsd.ts): requests and log lines, batched.
const statsd = createStatsd(settings)
const log = countingLogLines(createLogger({ level: settings.logLevel }), statsd)
// Server hooks that run in a worker (src/hooks/worker-hooks.ts, spec/hooks.md).
const hooks = createWorkerHooks(options, log)
const servers: Server[] = []
/** The app's upgrade handler (src/http/websocket-upgrade.ts), if it exports one. */
let appUpgrade: AppUpgrade | undefined
// --inspector only: the machine's own state after each event, for the page's
// worker chart (spec/inspector.md). Off, the machine is not even inspected.
const actor = createActor(workerMachine, {
  // --standby: a spare loads the app, then waits without accepting until the master promotes it.
  input: { spare: options.standby === true },
  ...(options.inspector
    ? {
        inspect: (e) => {
          if (e.type === '@xstate.snapshot')
            tell({ t: 'state', value: (e.snapshot as unknown as { value: string }).value, event: e.event })
        },
      }
    : {}),
})
const send = (event: WorkerEvent) => actor.send(event)
const tell = (message: WorkerMessage) => {
  if (process.connected) process.send!(message)
}
// --worker-connections, --max-requests, --max-memory, --keep-alive 0 (src/worker/limits.ts).
const limits = createWorkerLimits({
  settings,
  backlog: settings.backlog,
  log,
  // The master hears first: it starts the replacement at once and does not
  // count the exit as a crash. Then the same drain as SIGTERM.
  retire: (cause, reason) => send({ type: 'RETIRE', cause, reason }),
})

// --metrics-bind: the app's own prom-client metrics, when a scrape asks (src/worker/app-metrics.ts).
if (settings.metricsBind !== undefined) serveAppMetrics(parseAppSpec(options.app).file, tell)

// Counters for `corral ctl` and /metrics, reported in batches; none when neither is on (src/worker/request-stats.ts).
const requestStats =
  settings.noControlSocket && settings.metricsBind === undefined
    ? undefined
    : createRequestStats({ durations: settings.metricsBind !== undefined })

actor.on('boot', () => void boot())
actor.on('waitForListen', () => {
  // The wait a booting module gets to call listen() after its import: --timeout, or 30 s without one.
  const seconds = settings.timeout > 0 ? settings.timeout : 30
  setTimeout(() => send({ type: 'LISTEN_TIMEOUT', seconds }), seconds * 1000).unref()
})
actor.on('serve', (command) => void serve(command.from, command.from === 'server' ? command.server : -1))
actor.on('leaveIdle', ({ server }) => {
  const idle = appServers[server]!
  idle.leaveIdle()
  if (idle.asked) tell({ t: 'app-listen', asked: idle.asked, served: false })
})
actor.on('loadFailed', ({ reason }) => {
  // The master prints it, once for all workers; without the master, this worker does.
  if (process.connected) tell({ t: 'load-failed', reason })
  else log.error(reason)
})
actor.on('announceReady', () => {
  log.debug(`Worker ${options.id} serving ${servers.length} listener(s)`)
  tell({ t: 'ready' })
})
// The same message as a serving worker's: the master knows which role it gave.
actor.on('announceStandby', () => {
  log.debug(`Worker ${options.id} loaded the app; standing by`)
  tell({ t: 'ready' })
})
actor.on('stopAccepting', stopAccepting)
actor.on('closeAll', () => {
  limits.stop()
  for (const server of servers) {
    server.close()
    server.closeAllConnections()
  }
  served?.closed()
})
actor.on('retiring', ({ cause, reason }) => tell({ t: 'retire', cause, reason }))
actor.on('reopenLogs', () => {
  log.info('Reopening log files')
  reopenLogFiles()
})
actor.on('log', ({ level, message }) => log[level](message))
actor.on('exit', ({ code }) => {
  clearInterval(heartbeat)
  requestStats?.stop()
  statsd?.close()
  if (code === 0) log.info(`Worker exiting (pid: ${process.pid})`)
  // Let the log line and any IPC drain, and the log files flush, before leaving.
  // workerExit runs first (src/hooks/worker-hooks.ts).
  setImmediate(
    () =>
      void hooks
        .exiting()
        .then(() => closeLogFiles())
        .finally(() => process.exit(code)),
  )
})

/**
 * boot: the app's module imported with listen() caught (src/http/app-server.ts),
 * then what it exported, classified; or, before that, a server it started.
 */
async function boot(): Promise<void> {
  // --initgroups: become --user, with its groups, before any of the app runs (src/process/privileges.ts).
  const denied = finishPrivilegeDrop(settings)
  if (denied) return send({ type: 'BOOT_FAILED', code: BOOT_ERROR, reason: `Worker failed to boot: ${denied}` })
  // postFork: before the app is imported (the config file is imported first when it has worker hooks).
  await hooks.postFork()
  catchListen((server, asked) => {
    if (appServers.some((a) => a.server === server)) return
    appServers.push(appServer(server, asked, addressInfo(options!.addresses?.[0])))
    send({ type: 'APP_LISTENED', server: appServers.length - 1 })
  })
  try {
    const spec = parseAppSpec(options!.app)
    let app = await unwrapApp(await importApp(spec))
    // Once a server of its own listened, that server is the app (machines/worker.ts), whatever is exported.
    if (appServers.length > 0) return
    if (app === undefined) return send({ type: 'NOTHING_EXPORTED' })
    app = (await nestServer(app)) ?? app
    if (isServer(app)) exported = { server: appServer(app, undefined) }
    else {
      const handler = await toHandler(app, log)
      const upgrade = await findUpgrade(resolveApp(spec), app, log)
      // --http-protocols h2 with an app that cannot take HTTP/2's request objects (src/http/tls.ts).
      const refusal = h2Refusal(app, settings)
      if (refusal) throw new AppLoadError(refusal)
      exported = { handler, upgrade }
    }
    send({ type: 'APP_EXPORTED' })
  } catch (err) {
    // After its server was served, a module that throws is an app that crashed.
    if (actor.getSnapshot().value === 'running') return send({ type: 'CRASHED', reason: describeLoadFailure(err) })
    send({ type: 'BOOT_FAILED', code: APP_LOAD_ERROR, reason: `App failed to load: ${describeLoadFailure(err)}` })
  }
}

/** The exported app, once classified: a handler (and its upgrade handler), or a server. */
let exported: { handler: Handler; upgrade: AppUpgrade | undefined } | { server: AppServer } | undefined
/** Every http server the app called listen() on, in that order (APP_LISTENED's numbers). */
const appServers: AppServer[] = []
/** The app's server being served, if the app came as a server. */
let served: AppServer | undefined

/** serve: take up the inherited listeners with the app (the chart says which). */
async function serve(from: 'export' | 'server', index: number): Promise<void> {
  let handler: Handler
  if (from === 'server' || (exported && 'server' in exported)) {
    served = from === 'server' ? appServers[index]! : (exported as { server: AppServer }).server
    handler = served.request
    appUpgrade = undefined
    served.server.on('corral:close', () => send({ type: 'APP_CLOSED' }))
    served.onUpgradeListener((forward) => {
      upgradeForward = guardUpgrades(forward, settings, log.debug)
      for (const s of servers) s.on('upgrade', upgradeForward)
    })
  } else {
    handler = exported!.handler
    appUpgrade = exported!.upgrade
  }
  // postWorkerInit: the app is loaded; nothing is served or reported ready before it returns.
  await hooks.postWorkerInit()
  try {
    handler = withStatsd(withAccessLog(hooks.wrapHandler(handler), settings, log.exception), statsd)
    // Proxy headers (src/http/forwarded.ts), then --max-requests counting.
    handler = limits.wrap(forwardedRequests(handler, settings, log.debug))
    if (requestStats) handler = requestStats.wrap(handler)
    // sslContext: the TLS options, as the hook would have them (with --certfile only).
    // The files are read once here, for every listener (a problem fails the boot, naming the setting).
    const tls = loadTls(settings)
    if (!tls.ok) throw new Error(tls.errors.join('; '))
    const tlsOptions = tls.options ? await hooks.sslContext(tls.options) : undefined
    // The inherited sockets, then the --reuse-port addresses where this worker binds its own.
    for (const target of [...options!.fds, ...(options!.reusePort ?? [])]) {
      // node:http; node:https or HTTP/2 + HTTP/1.1 with --certfile (src/http/tls.ts).
      const server = guardServer(
        createWebServer(settings, serverOptions(), guardRequests(handler, settings, log.debug), tlsOptions),
        settings,
        log.debug,
      )
      corralServers.add(server)
      // --proxy-protocol: first in line for each connection (src/http/proxy-protocol.ts).
      installProxyProtocol(server, settings, log.debug)
      if (appUpgrade) server.on('upgrade', guardUpgrades(appUpgrade.listener, settings, log.debug))
      if (upgradeForward) server.on('upgrade', upgradeForward)
      await (typeof target === 'number'
        ? listenOnFd(server, target, settings.backlog)
        : listenReusePort(server, target, settings.backlog))
      servers.push(server)
    }
    limits.start(servers, options!.fds.length)
    requestStats?.start(servers, tell)
  } catch (err) {
    return send({ type: 'BOOT_FAILED', code: BOOT_ERROR, reason: `Worker failed to boot: ${describe(err)}` })
  }
  if (served) {
    served.attach(servedAddress())
    if (served.asked) tell({ t: 'app-listen', asked: served.asked, served: true })
  }
  send({ type: 'LOADED' })
}

/** The 'upgrade' listener handing upgrades to the app's server, once it has a listener of its own. */
let upgradeForward: ((req: IncomingMessage, socket: Duplex, head: Buffer) => void) | undefined

/** What server.address() answers the app's server with: corral's first listener (for a unix socket, Node cannot tell: the master's address). */
function servedAddress(): AddressInfo | string | null {
  return servers[0]?.address() ?? addressInfo(options!.addresses?.[0]) ?? null
}

/** A load failure in one line: where in the app it happened (file:line), and what. */
function describeLoadFailure(err: unknown): string {
  if (err instanceof AppLoadError || !(err instanceof Error)) return describe(err)
  // The first frame in the app's own code, not in Node's or corral's (src/ and machines/ in a
  // checkout, dist/ when installed: this module is src/worker/main.ts or dist/worker.js).
  const root = new URL(import.meta.url.endsWith('.ts') ? '../..' : '..', import.meta.url).href
  const own = ['src/', 'machines/', 'dist/'].map((dir) => root + dir)
  const frame = (err.stack ?? '')
    .split('\n')
    .map((line) => /^\s+at (?:.*\()?(.+?):(\d+):(\d+)\)?$/.exec(line))
    .find((m) => m && !m[1]!.startsWith('node:') && !own.some((dir) => m[1]!.startsWith(dir)))
  const where = frame
    ? `${frame[1]!.startsWith('file://') ? fileURLToPath(frame[1]!) : frame[1]}:${frame[2]}:${frame[3]}: `
    : ''
  return `${where}${err.name}: ${err.message}`
}

/**
 * Stop accepting without touching open connections: net.Server's close, not
 * http.Server's, which would also drop idle keep-alive sockets and race
 * clients about to reuse them. Every later response says Connection: close,
 * so each keep-alive client is told once, in an answer, to go elsewhere.
 */
function stopAccepting(): void {
  limits.stop()
  appUpgrade?.drain()
  served?.drainUpgrades()
  let open = servers.length
  if (open === 0) return send({ type: 'DRAINED' })
  for (const server of servers) {
    // HTTP/2 has no Connection header: its sessions get a GOAWAY instead.
    server.prependListener('request', (req, res) => req.httpVersionMajor === 1 && res.setHeader('connection', 'close'))
    goAway(server)
    NetServer.prototype.close.call(server, () => {
      if (--open > 0) return
      // The app's own server closes when corral's have: its close() callback, its 'close' event.
      served?.closed()
      send({ type: 'DRAINED' })
    })
  }
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}

/** node:http's options, from the settings. */
function serverOptions(): ServerOptions {
  return { ...keepAliveOptions(settings), ...httpServerOptions(settings) }
}

const heartbeat = settings.timeout > 0 ? setInterval(() => tell({ t: 'hb' }), (settings.timeout * 1000) / 2) : undefined

process.on('SIGTERM', () => send({ type: 'SIGNAL', signal: 'TERM' }))
// workerInt runs first when set (src/hooks/worker-hooks.ts).
process.on('SIGQUIT', () => hooks.interrupted(() => send({ type: 'SIGNAL', signal: 'QUIT' })))
process.on('SIGINT', () => hooks.interrupted(() => send({ type: 'SIGNAL', signal: 'INT' })))
// A terminal's hang-up or resize reaches the whole process group; these are
// the master's to act on. SIGUSR1 stays with Node: it starts the inspector
// the master uses to see where a stuck worker is stuck.
for (const signal of ['SIGHUP', 'SIGWINCH', 'SIGUSR2', 'SIGTTIN', 'SIGTTOU'] as const) process.on(signal, () => {})
process.on('message', (message: { t?: string }) => {
  if (message?.t === 'reopen') send({ type: 'REOPEN_LOGS' })
  else if (message?.t === 'take-over') send({ type: 'TAKE_OVER' })
})
// The IPC channel closes when the master dies, even by SIGKILL.
process.on('disconnect', () => send({ type: 'MASTER_GONE' }))
process.on('uncaughtException', (err) => {
  // Through the machine, so that the way out is the usual one (connections
  // closed, the workerExit hook, log files flushed); once the machine is done
  // (the exception came from that way out) there is nothing left to run.
  if (actor.getSnapshot().status === 'done') {
    log.exception('Uncaught exception in worker; exiting', err)
    process.exit(RUNTIME_ERROR)
  }
  // Logged once, by the machine, with the stack: the reason is the exception as Node prints it.
  send({
    type: 'CRASHED',
    reason: err instanceof Error && err.stack !== undefined ? err.stack : describe(err),
    summary: describeLoadFailure(err),
  })
})

actor.start()
