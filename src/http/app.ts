// Finding the user's app in a module and turning it into one Node request
// listener, whatever shape it was exported in.
import type { IncomingMessage, ServerResponse } from 'node:http'
import { existsSync, readFileSync, statSync } from 'node:fs'
import { createRequire } from 'node:module'
import { Server as NetServer } from 'node:net'
import { join, relative, resolve } from 'node:path'
import { frameworkHandler } from './app-frameworks.ts'
import { appServer, catchListen } from './app-server.ts'
import { locateSyntaxError } from '../process/syntax-error.ts'
import { importUserModule } from '../process/user-modules.ts'

export type Handler = (req: IncomingMessage, res: ServerResponse) => void
export type Logger = { exception(message: string, err: unknown): void }

/** The app could not be found or is not something corral can serve. */
export class AppLoadError extends Error {}

export interface AppSpec {
  file: string
  exportName: string | undefined
}

/** `path` or `path:exportName`; a colon inside the path itself is kept. */
export function parseAppSpec(spec: string, cwd = process.cwd()): AppSpec {
  const m = /^(.+):([A-Za-z_$][\w$]*)$/.exec(spec)
  if (m && !existsSync(resolve(cwd, spec))) return { file: resolve(cwd, m[1]!), exportName: m[2] }
  return { file: resolve(cwd, spec), exportName: undefined }
}

/**
 * The module `spec` names, as Node would find it: a file; a directory, by
 * its package.json's `exports` or `main`, else its index file; a package
 * name, from node_modules. Throws AppLoadError, saying what to name instead,
 * when there is none. Nothing of the app runs: the CLI asks before binding.
 */
export function resolveApp(spec: AppSpec, cwd = process.cwd()): AppSpec {
  const { file } = spec
  if (!existsSync(file)) {
    const bare = /^(@[\w.-]+\/)?[\w.-]+$/.test(relative(cwd, file)) && !/\.[cm]?[jt]s$/.test(file)
    if (bare) {
      try {
        return { ...spec, file: createRequire(join(cwd, 'package.json')).resolve(relative(cwd, file)) }
      } catch {}
    }
    throw new AppLoadError(`App module not found: ${file}`)
  }
  if (!statSync(file).isDirectory()) return spec
  const entry = packageEntry(file) ?? INDEX_FILES.map((name) => join(file, name)).find((f) => existsSync(f))
  if (entry === undefined || !existsSync(entry) || statSync(entry).isDirectory()) {
    throw new AppLoadError(
      `${file} is a directory with no app in it (its package.json names no existing "main" or "exports", and there is no index.js): name the module, e.g. corral ${join(relative(cwd, file) || '.', 'server.js')}`,
    )
  }
  return { ...spec, file: entry }
}

const INDEX_FILES = ['index.js', 'index.mjs', 'index.cjs', 'index.ts', 'index.mts', 'index.cts']

/** The file a directory's package.json points at: `exports` ('.', import or default), else `main`. */
function packageEntry(dir: string): string | undefined {
  let pkg: { main?: unknown; exports?: unknown }
  try {
    pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as typeof pkg
  } catch {
    return undefined
  }
  const pick = (e: unknown): string | undefined => {
    if (typeof e === 'string') return e
    if (typeof e !== 'object' || e === null) return undefined
    const o = e as Record<string, unknown>
    return pick(o['.'] ?? o.import ?? o.node ?? o.default ?? o.require)
  }
  const entry = pick(pkg.exports) ?? (typeof pkg.main === 'string' ? pkg.main : undefined)
  if (entry === undefined) return undefined
  const path = resolve(dir, entry)
  // main may leave out the extension, as require() allows.
  return [path, ...['.js', '.cjs', '.mjs', '/index.js'].map((ext) => path + ext)].find((f) => existsSync(f)) ?? path
}

/**
 * The app the module exports: the named export, else the default, else an
 * export named `app`. Undefined when there is none: a module that starts
 * its own server (spec/apps.md) need not export anything.
 */
export async function importApp(spec: AppSpec): Promise<unknown> {
  const { file } = resolveApp(spec)
  let mod: Record<string, unknown>
  try {
    mod = (await importUserModule(file)) as Record<string, unknown>
  } catch (err) {
    const where = locateSyntaxError(err, file)
    throw where === undefined ? err : new AppLoadError(where)
  }
  if (spec.exportName) {
    if (!(spec.exportName in mod))
      throw new AppLoadError(
        `${file} has no export named "${spec.exportName}" (it exports ${exportNames(mod)}; see spec/apps.md)`,
      )
    return mod[spec.exportName]
  }
  // A CommonJS module.exports = { app } arrives as default.app.
  const fallback = mod.default as Record<string, unknown> | undefined
  const app = mod.default ?? mod.app ?? fallback?.app
  // module.exports left as {} by a CommonJS module that exported nothing.
  if (isObject(app) && Object.getPrototypeOf(app) === Object.prototype && Object.keys(app).length === 0)
    return undefined
  return app
}

const exportNames = (mod: Record<string, unknown>) => {
  const names = Object.keys(mod).filter((k) => k !== 'module.exports')
  return names.length === 0 ? 'nothing' : names.join(', ')
}

/** The one line an app load failure names a module that exports no app with. */
const nothingExported = (spec: AppSpec) =>
  `${spec.file} exports no app: export a (req, res) handler, a fetch handler, a framework app or an http server as the default or as "app", or call listen() (see spec/apps.md)`

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null

/**
 * What the module exported, made ready: a promise is awaited (`export default
 * NestFactory.create(…)`, `module.exports = createApp()`), and a function that
 * declares no parameters is an app factory, called once and awaited; what
 * it resolves to is the app. Should the call answer a Response, the function
 * was a fetch handler that ignores its request after all, and is the app.
 */
export async function unwrapApp(app: unknown): Promise<unknown> {
  if (isObject(app) && typeof app.then === 'function') app = await app
  if (typeof app === 'function' && app.length === 0 && !isClass(app) && !isFrameworkFunction(app)) {
    const made = await (app as () => unknown)()
    if (made instanceof Response) return app
    return isObject(made) && typeof made.then === 'function' ? await made : made
  }
  return app
}

const isClass = (f: object) => /^class[\s{]/.test(Function.prototype.toString.call(f))
/** Express and Koa's callback() functions are not factories, whatever their declared length. */
const isFrameworkFunction = (f: object) => {
  const o = f as unknown as Record<string, unknown>
  return typeof o.handle === 'function' || typeof o.use === 'function'
}

/** An http, https or http2 server (exported, or from a NestJS app): served with its own request listeners. */
export function isServer(app: unknown): app is NetServer {
  return app instanceof NetServer
}

interface NestLike {
  init(): Promise<unknown>
  getHttpServer(): unknown
  getHttpAdapter(): unknown
}
const isNest = (app: unknown): app is NestLike =>
  isObject(app) &&
  typeof app.init === 'function' &&
  typeof app.getHttpServer === 'function' &&
  typeof app.getHttpAdapter === 'function'

/** A NestJS application (NestFactory.create's result, not listening): initialised, then its http server. */
export async function nestServer(app: unknown): Promise<NetServer | undefined> {
  if (!isNest(app)) return undefined
  await app.init()
  const server = app.getHttpServer()
  if (!isServer(server)) throw new AppLoadError('The NestJS app has no http server (getHttpServer()): see spec/apps.md')
  return server
}

/** "an object with keys port, host", "a number (3000)", "a class Foo", "null". */
function describeValue(v: unknown): string {
  if (v === null || v === undefined) return String(v)
  if (typeof v === 'function') {
    if (isClass(v)) return `a class ${v.name || '(anonymous)'} (not an instance of it)`
    return `a function of ${v.length} parameters`
  }
  if (typeof v === 'string') return `a string (${JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v)})`
  if (typeof v !== 'object') return `a ${typeof v} (${String(v)})`
  if (Array.isArray(v)) return `an array of ${v.length}`
  const name = Object.getPrototypeOf(v)?.constructor?.name as string | undefined
  const keys = Object.keys(v)
  const shown = keys.length === 0 ? 'no keys' : `keys ${keys.slice(0, 6).join(', ')}${keys.length > 6 ? ', …' : ''}`
  return name && name !== 'Object' ? `a ${name} with ${shown}` : `an object with ${shown}`
}

const isFetchApp = (app: unknown): app is { fetch: (req: Request) => unknown } =>
  typeof app === 'object' && app !== null && typeof (app as { fetch?: unknown }).fetch === 'function'

/**
 * A Node handler takes (req, res); a function of one parameter is taken as
 * a fetch handler (Request → Response). Objects with a `fetch` method
 * (Hono and friends) are fetch apps.
 */
export async function toHandler(app: unknown, log: Logger): Promise<Handler> {
  if (isFetchApp(app)) return fetchHandler(app.fetch.bind(app), log)
  // A Koa or Fastify instance exported as it is (src/http/app-frameworks.ts).
  const framework = await frameworkHandler(app)
  if (framework) return nodeHandler(framework, log)
  if (typeof app !== 'function' || isClass(app)) {
    throw new AppLoadError(
      `The app is ${describeValue(app)}: export a (req, res) handler, a fetch(Request) function, an object with fetch(), an Express, Koa, Fastify or NestJS app, an http server, or an async factory resolving to one (see spec/apps.md)`,
    )
  }
  if (app.length <= 1) return fetchHandler(app as (req: Request) => unknown, log)
  return nodeHandler(app as (req: IncomingMessage, res: ServerResponse) => unknown, log)
}

// The adapter is loaded only for fetch apps: a plain handler's worker should
// not carry it.
async function fetchHandler(fetch: (req: Request) => unknown, log: Logger): Promise<Handler> {
  const { getRequestListener } = await import('@hono/node-server')
  return getRequestListener(fetch, {
    errorHandler: (err) => {
      log.exception('Error handling request', err)
      return new Response('Internal Server Error', { status: 500 })
    },
  }) as Handler
}

function nodeHandler(app: (req: IncomingMessage, res: ServerResponse) => unknown, log: Logger): Handler {
  const fail = (err: unknown, res: ServerResponse) => {
    log.exception(`Error handling request ${res.req.method} ${res.req.url}`, err)
    if (res.headersSent) {
      res.destroy()
      return
    }
    res.writeHead(500, { 'content-type': 'text/plain', 'content-length': 21 })
    res.end('Internal Server Error')
  }
  return (req, res) => {
    try {
      const result = app(req, res) as Promise<unknown> | undefined
      if (result && typeof result.then === 'function') result.then(undefined, (err: unknown) => fail(err, res))
    } catch (err) {
      fail(err, res)
    }
  }
}

/**
 * The app loaded once outside a worker (--check-config, --preload), as a
 * worker would load it but serving nothing: its listen() binds nothing and
 * simply succeeds (src/http/app-server.ts), for the life of the process, so
 * that a master never binds what its app asks for, even later. Throws as a
 * worker would fail.
 */
export async function loadAppOnce(app: string, log: Logger): Promise<void> {
  let listened = false
  catchListen((server, asked) => {
    listened = true
    appServer(server, asked).leaveIdle()
  })
  const spec = parseAppSpec(app)
  const exported = await unwrapApp(await importApp(spec))
  if (listened) return
  if (exported === undefined) throw new AppLoadError(nothingExported(resolveApp(spec)))
  const server = (await nestServer(exported)) ?? exported
  if (!isServer(server)) await toHandler(server, log)
}

/** A bare name that is a package installed where corral runs (`corral my-app`): an app, not a mistyped command. */
export function isInstalledPackage(name: string, cwd = process.cwd()): boolean {
  try {
    createRequire(join(cwd, 'package.json')).resolve(name)
    return true
  } catch {
    return false
  }
}
