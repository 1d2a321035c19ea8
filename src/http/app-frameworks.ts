// Framework instances exported as they are, turned into (req, res) handlers:
// - a Koa application (`export default app`) → app.callback();
// - a Fastify instance (`export default app`) → app.ready(), then
//   app.routing, the (req, res) function Fastify's own server would call.
// Recognised by shape, so corral depends on neither. See spec/apps.md.
import type { IncomingMessage, ServerResponse } from 'node:http'

type NodeHandler = (req: IncomingMessage, res: ServerResponse) => unknown

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null

interface KoaLike {
  callback(): NodeHandler
  use: unknown
}
interface FastifyLike {
  ready(): PromiseLike<unknown>
  routing: NodeHandler
  server: unknown
}

const isKoa = (app: unknown): app is KoaLike =>
  isObject(app) && typeof app.callback === 'function' && typeof app.use === 'function'
const isFastify = (app: unknown): app is FastifyLike =>
  isObject(app) && typeof app.ready === 'function' && typeof app.routing === 'function' && isObject(app.server)

/** The (req, res) handler of a framework instance, or undefined when `app` is not one. */
export async function frameworkHandler(app: unknown): Promise<NodeHandler | undefined> {
  if (isKoa(app)) return app.callback()
  if (isFastify(app)) {
    // Plugins and routes are registered asynchronously; ready() runs them.
    await app.ready()
    const routing = app.routing
    return (req, res) => routing(req, res)
  }
  return undefined
}
