// The master's control socket (spec/control.md): a unix socket that speaks
// JSON lines to `corral ctl`. Like the pidfile (src/master/pidfile.ts) it
// follows a USR2 upgrade: the old master's socket moves aside to PATH.2 so
// the new master can listen on PATH, and moves back on a rollback; a master
// removes only a file that is still its own socket.
import { chmodSync, lstatSync, renameSync, statSync, unlinkSync } from 'node:fs'
import { connect, createServer, type Server, type Socket } from 'node:net'
import { dirname, join, resolve } from 'node:path'
import {
  CONTROL_PROTOCOL_VERSION,
  lineReader,
  type ControlData,
  type ControlRequest,
  type ControlResponse,
} from '../protocol/control.ts'

/** A command the master refuses, said to the client in one line (no stack). */
export class ControlError extends Error {}

type ControlHandler = (command: readonly string[]) => ControlData | Promise<ControlData>

export interface ControlSocket {
  /** Where it listens now; undefined when this master has none. */
  readonly path: string | undefined
  /** USR2: PATH becomes PATH.2. */
  moveAside(): void
  /** Rollback: PATH.2 becomes PATH again. */
  restore(): void
  /** At exit: stops listening and removes the file, if it is still ours. */
  close(): void
}

export const NO_CONTROL_SOCKET: ControlSocket = { path: undefined, moveAside() {}, restore() {}, close() {} }

/** A request line longer than this is no request: the connection is closed. */
const MAX_LINE = 64 * 1024

const asidePath = (path: string) => `${path}.2`

export interface ControlSocketOptions {
  path: string
  /** Octal text, e.g. '0600'. */
  mode: string
  handle: ControlHandler
  warn: (message: string) => void
}

/**
 * Listens on `path` unless a live master already answers there (then warns
 * and returns a socket that is none). A stale file is replaced.
 */
export async function openControlSocket({ path, mode, handle, warn }: ControlSocketOptions): Promise<ControlSocket> {
  const wanted = resolve(path)
  const existing = lstatOrUndefined(wanted)
  if (existing) {
    if (!existing.isSocket()) {
      warn(`Control socket: ${wanted} exists and is not a socket; running without one`)
      return NO_CONTROL_SOCKET
    }
    if (await answers(wanted)) {
      warn(`Control socket: another master answers on ${wanted}; running without one (give --control-socket PATH)`)
      return NO_CONTROL_SOCKET
    }
    try {
      unlinkSync(wanted)
    } catch (err) {
      warn(
        `Control socket: cannot replace the stale ${wanted} (${(err as NodeJS.ErrnoException).code}); running without one`,
      )
      return NO_CONTROL_SOCKET
    }
  }
  const fileMode = Number.parseInt(mode, 8)
  const server = createServer((socket) => serve(socket, handle))
  // libuv unlinks the path a socket was bound to when it closes it, even at
  // a natural exit: bound under a temporary name and renamed, the unlink is
  // ours to do, and a master never deletes the path its successor listens on.
  const long = `${wanted}.${process.pid}.tmp`
  const bound = Buffer.byteLength(long) < 108 ? long : join(dirname(wanted), `.corral-ctl-${process.pid}.tmp`)
  unlinkSafely(bound)
  // The mode through the umask while bind(2) creates the file, so there is
  // no moment at which anyone else could connect; chmod for modes wider than the umask allows.
  // bind(2) happens inside listen(), synchronously: the umask is back before anything else runs.
  const umask = process.umask(~fileMode & 0o777)
  let listening: Promise<void>
  try {
    listening = new Promise<void>((done, fail) => {
      server.once('error', fail)
      server.listen(bound, () => {
        server.off('error', fail)
        done()
      })
    })
  } finally {
    process.umask(umask)
  }
  let ino: number
  let dev: number
  try {
    await listening
    chmodSync(bound, fileMode)
    renameSync(bound, wanted)
    ;({ ino, dev } = statSync(wanted))
  } catch (err) {
    // Optional and on by default: a directory corral may not write to must not keep it from serving.
    server.close()
    unlinkSafely(bound)
    warn(
      `Control socket: cannot listen on ${wanted} (${(err as NodeJS.ErrnoException).code ?? String(err)}); running without one`,
    )
    return NO_CONTROL_SOCKET
  }
  let current: string | undefined = wanted
  const ours = (p: string) => {
    const st = lstatOrUndefined(p)
    return st !== undefined && st.ino === ino && st.dev === dev
  }
  const move = (from: string, to: string) => {
    if (current !== from || !ours(from)) return
    renameSync(from, to)
    current = to
  }
  return {
    get path() {
      return current
    },
    moveAside: () => move(wanted, asidePath(wanted)),
    restore: () => move(asidePath(wanted), wanted),
    close() {
      closeServer(server)
      if (current !== undefined && ours(current)) unlinkSafely(current)
      current = undefined
    },
  }
}

function serve(socket: Socket, handle: ControlHandler): void {
  // One request at a time per connection: answers come back in order.
  let queue = Promise.resolve()
  socket.setEncoding('utf8')
  socket.on('error', () => {})
  const read = lineReader((line) => {
    if (line.trim() !== '') queue = queue.then(() => answer(line, handle)).then((r) => reply(socket, r))
  })
  socket.on('data', (chunk: string) => {
    if (read(chunk) > MAX_LINE) {
      reply(socket, failure(undefined, `request longer than ${MAX_LINE} bytes`))
      socket.end()
    }
  })
}

async function answer(line: string, handle: ControlHandler): Promise<ControlResponse> {
  let request: ControlRequest
  try {
    request = JSON.parse(line) as ControlRequest
  } catch {
    return failure(undefined, 'not JSON: each request is one JSON object on one line')
  }
  const id = request?.id
  if (typeof request !== 'object' || request === null) return failure(undefined, 'a request is a JSON object')
  if (request.v !== CONTROL_PROTOCOL_VERSION)
    return failure(
      id,
      `protocol version ${JSON.stringify(request.v)} is not spoken here (this master speaks ${CONTROL_PROTOCOL_VERSION})`,
    )
  if (!Array.isArray(request.command) || !request.command.every((w) => typeof w === 'string'))
    return failure(id, '"command" must be an array of strings, e.g. ["show", "workers"]')
  try {
    const data = await handle(request.command)
    return { v: CONTROL_PROTOCOL_VERSION, ...(id === undefined ? {} : { id }), ok: true, data }
  } catch (err) {
    if (err instanceof ControlError) return failure(id, err.message)
    return failure(id, `internal error: ${err instanceof Error ? err.message : String(err)}`)
  }
}

const failure = (id: ControlRequest['id'], error: string): ControlResponse => ({
  v: CONTROL_PROTOCOL_VERSION,
  ...(id === undefined ? {} : { id }),
  ok: false,
  error,
})

function reply(socket: Socket, response: ControlResponse): void {
  if (!socket.destroyed) socket.write(`${JSON.stringify(response)}\n`)
}

/** Whether something accepts connections at `path`: a live master, as opposed to a file left by a dead one. */
function answers(path: string): Promise<boolean> {
  return new Promise((done) => {
    const probe = connect(path)
    const finish = (alive: boolean) => {
      probe.destroy()
      done(alive)
    }
    probe.once('connect', () => finish(true))
    probe.once('error', () => finish(false))
    probe.setTimeout(2000, () => finish(false))
  })
}

function closeServer(server: Server): void {
  server.close()
  // A client at the interactive prompt keeps its connection open: the master does not wait for it.
  ;(server as Server & { closeAllConnections?: () => void }).closeAllConnections?.()
}

function lstatOrUndefined(p: string) {
  try {
    return lstatSync(p)
  } catch {
    return undefined
  }
}

function unlinkSafely(p: string): void {
  try {
    unlinkSync(p)
  } catch {
    // gone already
  }
}
