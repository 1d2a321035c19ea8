// The master's half of --worker-connections (spec/worker-limits.md): a full
// worker closes its listening handles, and to listen again it asks the master
// for fresh copies of the sockets, sent over the IPC channel (SCM_RIGHTS).
// The worker's half is src/worker/limits.ts.
import net from 'node:net'
import type { ChildProcess } from 'node:child_process'
import type { ListenerCopyMessage } from '../protocol/master-worker.ts'

interface NativeHandle {
  readonly fd: number
}
type CreateServerHandle = (address: null, port: number, addressType: undefined, fd: number) => NativeHandle | number
const createServerHandle = (net as unknown as { _createServerHandle: CreateServerHandle })._createServerHandle

/**
 * Answers a worker's requests for copies of its listeners (see
 * limitConnections in src/worker/limits.ts). `fds` are the master's descriptors, in the order the
 * worker inherited them. The handles wrap the master's own descriptors
 * without listening or watching them, and are never closed: the listener
 * owns the descriptor.
 */
export function serveListenerCopies(
  child: ChildProcess,
  fds: readonly number[],
  onError: (message: string) => void,
): void {
  child.on('message', (message: Partial<ListenerCopyMessage> | null) => {
    if (message?.t !== 'listener-copy' || typeof message.index !== 'number') return
    const fd = fds[message.index]
    if (fd === undefined || !child.connected) return
    const handle = nativeHandle(fd)
    if (typeof handle === 'number') {
      onError(`Can't hand listener fd ${fd} to a worker: errno ${handle}`)
      // Answered without a socket: the worker retires rather than wait.
      return void child.send({ t: 'listener-copy', index: message.index } satisfies ListenerCopyMessage)
    }
    child.send({ t: 'listener-copy', index: message.index } satisfies ListenerCopyMessage, handle as never, (err) => {
      if (err) onError(`Can't hand listener fd ${fd} to a worker: ${err.message}`)
    })
  })
}

const nativeHandles = new Map<number, NativeHandle>()

function nativeHandle(fd: number): NativeHandle | number {
  let handle = nativeHandles.get(fd)
  if (handle === undefined) {
    const created = createServerHandle(null, 0, undefined, fd)
    if (typeof created === 'number') return created
    handle = created
    nativeHandles.set(fd, handle)
  }
  return handle
}
