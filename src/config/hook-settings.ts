// The server hooks' entries in the settings registry (src/config/registry.ts):
// one per hook, type 'hook', no flags, set only in a config file. Kept apart
// from src/hooks/hooks.ts, which workers import and which must not load
// effect (nor carry these docs).
import * as Schema from 'effect/Schema'
import { HOOK_NAMES, type HookName, type Hooks } from '../hooks/hooks.ts'
import { prose, type SettingSpec } from './setting-spec.ts'

/** Where each hook runs, and what it is for: its entry's doc (spec/settings.md). */
const HOOK_DOCS: Readonly<Record<HookName, string>> = {
  onStarting: prose`
    onStarting(server): called in the master just before the listeners are bound (after --preload). Awaited; a hook that
    throws stops corral with exit code 1 and the reason.
  `,
  onReload: prose`
    onReload(server): called in the master when a reload (HUP, --reload) starts a new generation of workers, after the
    settings are re-read and before the new workers are spawned. Awaited.
  `,
  whenReady: prose`
    whenReady(server): called in the master once the listeners are bound, just before the first workers are spawned.
    Awaited.
  `,
  preFork: prose`
    preFork(server, worker): called in the master just before a worker process is spawned (worker.pid is undefined).
    Awaited.
  `,
  postFork:
    'postFork(server, worker): called in the new worker process, first thing, before the app is imported. Awaited.',
  postWorkerInit: prose`
    postWorkerInit(worker): called in the worker after the app is imported, before it serves and reports ready. Awaited.
  `,
  workerInt: 'workerInt(worker): called in the worker when it receives SIGINT or SIGQUIT, before it stops. Awaited.',
  workerAbort: prose`
    workerAbort(worker): called in the master when a worker has missed its heartbeat for --timeout, with the stack it is
    stuck in (worker.stack), before it is killed. (In gunicorn it runs in the worker on SIGABRT; a stuck Node worker
    cannot run JavaScript.) Awaited, at most 5 s.
  `,
  preExec: 'preExec(server): called in the master on USR2, just before the new master is started. Awaited.',
  preRequest: prose`
    preRequest(worker, req): called in the worker before the app handles a request. A promise it returns is awaited
    before the app is called; without the hook nothing is added to the request path.
  `,
  postRequest:
    'postRequest(worker, req, res): called in the worker once the response is sent, or its connection closed.',
  childExit: prose`
    childExit(server, worker): called in the master after a worker process has exited (worker.exitCode, worker.signal, and worker.cause: why it left, e.g. crash, timeout, max-requests, reload, stop).
  `,
  workerExit: prose`
    workerExit(server, worker): called in the worker as it exits, after it has stopped serving. Awaited before the
    process exits, at most --graceful-timeout (1 s when the master is gone).
  `,
  nworkersChanged: prose`
    nworkersChanged(server, newValue, oldValue): called in the master at start (oldValue undefined), then whenever the
    number of workers changes (TTIN, TTOU, a HUP with a new workers).
  `,
  onExit: prose`
    onExit(server): called in the master just before it exits, after its workers have stopped and the pidfile is
    removed.
  `,
  sslContext: prose`
    sslContext(server, defaults): called in each worker that serves TLS (--certfile), before its servers are created;
    returns the TLS options (node:tls SecureContextOptions) to use instead of corral's, which defaults() builds from the
    settings. Awaited; if it throws, the worker uses the defaults.
  `,
  onDirtyStarting: prose`
    onDirtyStarting(server): called in the master before the first dirty workers are spawned (spec/dirty.md), when
    there is a --dirty-app. Awaited.
  `,
  dirtyPostSpawn: 'dirtyPostSpawn(server, worker): called in the master once a dirty worker process is spawned.',
  dirtyWorkerInit: prose`
    dirtyWorkerInit(worker): called in a dirty worker once its apps are loaded (their init() done), before it reports
    ready. Awaited; a throw is logged and the worker goes on.
  `,
  dirtyWorkerExit: prose`
    dirtyWorkerExit(server, worker): called in the master after a dirty worker has exited (worker.exitCode,
    worker.signal, worker.cause: crash, boot-failure, timeout, scaled-down, reload, abandoned-reload or stop).
  `,
}

const expected = { expected: 'a function' }

function hookSchema<N extends HookName>() {
  return Schema.UndefinedOr(Schema.declare((u: unknown): u is Hooks[N] => typeof u === 'function', expected)).annotate(
    expected,
  )
}
type HookSchema<N extends HookName> = ReturnType<typeof hookSchema<N>>

/** One entry per hook, each with its own name and function type (so defineConfig types each hook's arguments). */
// Its default is undefined, never a function: a function default means a computed one.
type HookSetting = {
  [N in HookName]: Omit<SettingSpec<N, HookSchema<N>>, 'default'> & { readonly default: undefined }
}[HookName]

/** Spread into the registry: `...hookSettings`. */
export const hookSettings = HOOK_NAMES.map(
  (name): SettingSpec => ({
    name,
    flags: [],
    section: 'Server hooks',
    // A HUP reads the config file again: new workers get the new functions, and so does the master.
    onHup: 'applied',
    type: 'hook',
    default: undefined,
    defaultDoc: 'none',
    schema: hookSchema(),
    doc: `${HOOK_DOCS[name]} See spec/hooks.md.`,
  }),
) as unknown as readonly HookSetting[]
