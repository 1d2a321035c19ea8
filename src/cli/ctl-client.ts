// The client side of the control socket (spec/control.md): one connection,
// requests answered in order, and every failure to connect said as a
// sentence that names the path.
import { connect, type Socket } from 'node:net'
import { CONTROL_PROTOCOL_VERSION, lineReader, type ControlResponse, type MachineSummary } from '../protocol/control.ts'

export interface Connection {
  request(words: readonly string[]): Promise<ControlResponse>
  close(): void
}

/** Connects, or fails with a sentence that names the path and what is wrong there. */
export function open(path: string): Promise<Connection> {
  return new Promise((resolve, reject) => {
    const socket: Socket = connect(path)
    socket.setEncoding('utf8')
    const pending: ((r: ControlResponse) => void)[] = []
    let nextId = 1
    let closedWith: Error | undefined
    const failAll = (err: Error) => {
      closedWith = err
      for (const p of pending.splice(0)) p({ v: CONTROL_PROTOCOL_VERSION, ok: false, error: err.message })
    }
    socket.once('connect', () =>
      resolve({
        request(words) {
          if (closedWith) return Promise.reject(closedWith)
          return new Promise((answered) => {
            pending.push(answered)
            socket.write(`${JSON.stringify({ v: CONTROL_PROTOCOL_VERSION, id: nextId++, command: words })}\n`)
          })
        },
        close: () => socket.end(),
      }),
    )
    socket.on(
      'data',
      lineReader((line) => pending.shift()?.(JSON.parse(line) as ControlResponse)),
    )
    socket.on('error', (err: NodeJS.ErrnoException) => {
      const why = connectError(path, err)
      failAll(why)
      reject(why)
    })
    socket.on('close', () => failAll(new Error(`the master closed ${path} (it may be shutting down)`)))
  })
}

function connectError(path: string, err: NodeJS.ErrnoException): Error {
  switch (err.code) {
    case 'ENOENT':
      return new Error(`no control socket at ${path}: is corral running here? (give -s PATH)`)
    case 'ECONNREFUSED':
      return new Error(`nothing answers on ${path}: the master that made it is gone (a stale socket)`)
    case 'EACCES':
    case 'EPERM':
      return new Error(`not allowed to connect to ${path} (see --control-socket-mode)`)
    case 'ENOTSOCK':
      return new Error(`${path} is not a socket`)
    default:
      return new Error(`cannot talk to ${path}: ${err.message}`)
  }
}

/** One request on a connection of its own. */
export async function ask(path: string, words: readonly string[]): Promise<ControlResponse> {
  const connection = await open(path)
  try {
    return await connection.request(words)
  } finally {
    connection.close()
  }
}

/** The master answering at `path`, if one does. */
export async function machineAt(path: string): Promise<MachineSummary | undefined> {
  try {
    const r = await ask(path, ['show', 'machine'])
    return r.ok && r.data.kind === 'machine' ? r.data.machine : undefined
  } catch {
    return undefined
  }
}
