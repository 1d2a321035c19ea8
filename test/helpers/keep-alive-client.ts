// A raw keep-alive HTTP/1.1 client for end-to-end tests: one connection of
// its own, one request at a time, answers read off the wire (the test apps
// answer with one chunk), and how the connection ended remembered.
import { connect, type Socket } from 'node:net'

/** A keep-alive client on its own connection, one request at a time, that remembers how the connection ended. */
export class KeepAliveClient {
  readonly socket: Socket
  /** 'open', or how it ended: 'closed' by the server, 'reset', 'error'. */
  state: 'open' | 'closed' | 'reset' | 'error' = 'open'
  private buffer = ''
  private waiting: ((body: string) => void) | undefined

  constructor(port: number) {
    this.socket = connect(port, '127.0.0.1')
    this.socket.setEncoding('latin1')
    this.socket.on('data', (chunk: string) => {
      this.buffer += chunk
      // The test apps answer with one chunk (chunked encoding).
      const m = /^HTTP\/1\.1 (\d+)[\s\S]*?\r\n\r\n([0-9a-f]+)\r\n([\s\S]*?)\r\n0\r\n\r\n/i.exec(this.buffer)
      if (!m) return
      this.buffer = this.buffer.slice(m[0].length)
      this.waiting?.(`${m[1]} ${m[3]}`)
    })
    this.socket.on('end', () => {
      if (this.state === 'open') this.state = 'closed'
    })
    this.socket.on('error', (e: NodeJS.ErrnoException) => (this.state = e.code === 'ECONNRESET' ? 'reset' : 'error'))
  }

  connected(): Promise<void> {
    return new Promise((resolve, reject) => {
      if (!this.socket.connecting) return resolve()
      this.socket.once('connect', resolve).once('error', reject)
    })
  }

  /** Sends a request; resolves with "STATUS BODY". */
  ask(path = '/'): Promise<string> {
    return new Promise((resolve) => {
      this.waiting = resolve
      this.socket.write(`GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`)
    })
  }

  close(): void {
    this.socket.destroy()
  }
}
