// HTTP upgrades (WebSocket and the like): how an app hands corral the
// handler for node:http's 'upgrade' event. See spec/apps.md.
//
// The app module exports `upgrade` (or its default-exported object has one):
// - a function (req, socket, head), given every upgrade request as it is;
// - a `ws` WebSocketServer made with { noServer: true } (anything with
//   handleUpgrade): corral completes the handshake and emits 'connection'
//   on it, as ws's own server would; when the worker drains, each client
//   gets a close frame 1001 (going away), so a reload is not held up until
//   --graceful-timeout by open sockets.
// Without one, node:http treats an upgrade request as an ordinary request.
import type { IncomingMessage } from 'node:http'
import type { Duplex } from 'node:stream'
import { pathToFileURL } from 'node:url'
import { AppLoadError, type AppSpec } from './app.ts'

type UpgradeListener = (req: IncomingMessage, socket: Duplex, head: Buffer) => void

export interface AppUpgrade {
  readonly listener: UpgradeListener
  /** The worker is draining: ask long-lived upgraded connections to go elsewhere. */
  readonly drain: () => void
}

interface WebSocketServerLike {
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer, done: (ws: unknown) => void): void
  emit(event: string, ...args: unknown[]): boolean
  clients?: Iterable<{ close(code?: number, reason?: string): void }>
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null
const isWebSocketServer = (v: unknown): v is WebSocketServerLike => isObject(v) && typeof v.handleUpgrade === 'function'

/** The module's upgrade handler, if it has one; throws AppLoadError for one corral cannot use. */
export async function findUpgrade(
  spec: AppSpec,
  app: unknown,
  log: { exception(message: string, err: unknown): void },
): Promise<AppUpgrade | undefined> {
  // Already imported by importApp: this is the module cache.
  const mod = (await import(pathToFileURL(spec.file).href)) as Record<string, unknown>
  const candidate =
    mod.upgrade ??
    (isObject(mod.default) ? mod.default.upgrade : undefined) ??
    (isObject(app) ? app.upgrade : undefined)
  if (candidate === undefined) return undefined

  // An upgraded socket that errors with no listener would take the worker down.
  const guard = (socket: Duplex) => {
    if (socket.listenerCount('error') === 0) socket.on('error', () => socket.destroy())
  }
  if (isWebSocketServer(candidate)) {
    const wss = candidate
    return {
      listener: (req, socket, head) => {
        guard(socket)
        wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req))
      },
      drain: () => {
        for (const client of wss.clients ?? []) client.close(1001, 'server going away')
      },
    }
  }
  if (typeof candidate === 'function') {
    const fail = (err: unknown, req: IncomingMessage, socket: Duplex) => {
      log.exception(`Error handling upgrade ${req.method} ${req.url}`, err)
      socket.destroy()
    }
    return {
      listener: (req, socket, head) => {
        guard(socket)
        try {
          const result = candidate(req, socket, head) as Promise<unknown> | undefined
          if (result && typeof result.then === 'function')
            result.then(undefined, (err: unknown) => fail(err, req, socket))
        } catch (err) {
          fail(err, req, socket)
        }
      },
      drain: () => {},
    }
  }
  throw new AppLoadError(
    `${spec.file}: "upgrade" is a ${candidate === null ? 'null' : typeof candidate}, not a (req, socket, head) function or a ws WebSocketServer`,
  )
}
