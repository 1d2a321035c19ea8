// A raw HTTP/1.x client for wire-level tests: it writes exact bytes, reads
// whatever comes back until the server closes (or a timeout), and splits the
// bytes into responses. No HTTP library in between, so nothing is fixed up.
import { connect } from 'node:net'

export interface Exchange {
  /** Every byte the server sent. */
  data: Buffer
  /** The server closed (or reset) the connection before the timeout. */
  closed: boolean
  /** Milliseconds from connect to close (or to the timeout). */
  ms: number
}

/**
 * Opens a connection, writes `bytes` (each element of an array is a separate
 * write), half-closes unless `keepOpen`, and collects the answer.
 */
export function exchange(
  port: number,
  bytes: Buffer | Buffer[],
  { timeoutMs = 3000, keepOpen = false } = {},
): Promise<Exchange> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = []
    const t0 = Date.now()
    const socket = connect(port, '127.0.0.1')
    let done = false
    const finish = (closed: boolean) => {
      if (done) return
      done = true
      clearTimeout(timer)
      socket.destroy()
      resolve({ data: Buffer.concat(chunks), closed, ms: Date.now() - t0 })
    }
    const timer = setTimeout(() => finish(false), timeoutMs)
    socket.on('data', (c: Buffer) => chunks.push(c))
    socket.on('close', () => finish(true))
    socket.on('error', () => finish(true))
    socket.on('connect', () => {
      for (const b of Array.isArray(bytes) ? bytes : [bytes]) socket.write(b)
      if (!keepOpen) socket.end()
    })
  })
}

export interface WireResponse {
  status: number
  headers: Record<string, string>
  body: Buffer
}

/**
 * Splits a byte stream into responses (Content-Length or chunked bodies; a
 * response with neither has no body). A trailing fragment that is not a
 * whole response is returned with status -1.
 */
export function parseResponses(data: Buffer): WireResponse[] {
  const out: WireResponse[] = []
  let i = 0
  while (i < data.length) {
    const end = data.indexOf('\r\n\r\n', i)
    const statusLine = /^HTTP\/1\.[01] (\d{3})/.exec(data.subarray(i, i + 16).toString('latin1'))
    if (end < 0 || !statusLine) {
      out.push({ status: -1, headers: {}, body: data.subarray(i) })
      break
    }
    const lines = data.subarray(i, end).toString('latin1').split('\r\n')
    const headers: Record<string, string> = {}
    for (const line of lines.slice(1)) {
      const colon = line.indexOf(':')
      headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim()
    }
    let j = end + 4
    if (headers['transfer-encoding']?.toLowerCase() === 'chunked') {
      const parts: Buffer[] = []
      for (;;) {
        const eol = data.indexOf('\r\n', j)
        if (eol < 0) return [...out, { status: -1, headers, body: data.subarray(i) }]
        const size = parseInt(data.subarray(j, eol).toString('latin1'), 16)
        j = eol + 2
        if (size === 0) {
          const trailerEnd = data.indexOf('\r\n\r\n', j - 2)
          j = trailerEnd < 0 ? data.length : trailerEnd + 4
          break
        }
        parts.push(data.subarray(j, j + size))
        j += size + 2
      }
      out.push({ status: Number(statusLine[1]), headers, body: Buffer.concat(parts) })
    } else {
      const length = Number(headers['content-length'] ?? 0)
      if (j + length > data.length) return [...out, { status: -1, headers, body: data.subarray(i) }]
      out.push({ status: Number(statusLine[1]), headers, body: data.subarray(j, j + length) })
      j += length
    }
    i = j
  }
  return out
}

/**
 * One well-formed request on its own connection (HTTP/1.0 with no header
 * fields, so that it passes even the tightest limits); resolves with the answer.
 */
export async function goodRequest(port: number, path = '/ok'): Promise<WireResponse | undefined> {
  const r = await exchange(port, Buffer.from(`GET ${path} HTTP/1.0\r\n\r\n`))
  return parseResponses(r.data)[0]
}
