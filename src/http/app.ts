// Finding the user's app in a module and turning it into one Node request
// listener, whatever shape it was exported in.
import type { IncomingMessage, ServerResponse } from 'node:http'
import { existsSync } from 'node:fs'
import { resolve } from 'node:path'
import { frameworkHandler } from './app-frameworks.ts'
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

export async function importApp(spec: AppSpec): Promise<unknown> {
  if (!existsSync(spec.file)) throw new AppLoadError(`App module not found: ${spec.file}`)
  let mod: Record<string, unknown>
  try {
    mod = (await importUserModule(spec.file)) as Record<string, unknown>
  } catch (err) {
    const where = locateSyntaxError(err, spec.file)
    throw where === undefined ? err : new AppLoadError(where)
  }
  if (spec.exportName) {
    if (!(spec.exportName in mod)) throw new AppLoadError(`${spec.file} has no export named "${spec.exportName}"`)
    return mod[spec.exportName]
  }
  // A CommonJS module.exports = { app } arrives as default.app.
  const fallback = mod.default as Record<string, unknown> | undefined
  const app = mod.default ?? mod.app ?? fallback?.app
  if (app === undefined) throw new AppLoadError(`${spec.file} exports no app: export a default or a named "app"`)
  return app
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
  if (typeof app !== 'function') {
    throw new AppLoadError(
      `The app is a ${app === null ? 'null' : typeof app}, not a (req, res) handler, a fetch(Request) function, an object with fetch(), or a Koa or Fastify app`,
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
