// The clients the cases use, each a real one: node:http (keep-alive, HEAD,
// Expect: 100-continue, aborts, a chosen local address), fetch, curl (the
// multipart form), http2, ws and an EventSource. Each resolves with what a
// user would look at: status, headers, body or its size and hash.
import { execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import { request, type Agent, type IncomingHttpHeaders } from 'node:http'
import { connect as h2connect } from 'node:http2'
import { request as httpsRequest } from 'node:https'

export const MiB = 1024 * 1024

export interface Answer {
  readonly status: number
  readonly headers: IncomingHttpHeaders
  readonly body: Buffer
  /** Whether node:http reused a kept-alive connection for this request. */
  readonly reusedSocket: boolean
}

export interface RequestOptions {
  readonly method?: string
  readonly headers?: Record<string, string>
  readonly body?: Buffer | readonly Buffer[]
  readonly agent?: Agent | false
  readonly localAddress?: string
  readonly timeoutMs?: number
}

/** One request with node:http (or https for an https: URL, trusting `ca`); a body given as an array is sent chunked. */
export function http(url: string, options: RequestOptions & { ca?: string } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const chunked = Array.isArray(options.body)
    const body = options.body as Buffer | Buffer[] | undefined
    const headers: Record<string, string> = { ...options.headers }
    if (body && !chunked) headers['content-length'] = String((body as Buffer).length)
    const send = url.startsWith('https:') ? httpsRequest : request
    const req = send(
      url,
      {
        method: options.method ?? 'GET',
        headers,
        agent: options.agent,
        localAddress: options.localAddress,
        ca: options.ca,
        timeout: options.timeoutMs ?? 30_000,
      },
      (res) => {
        const parts: Buffer[] = []
        res.on('data', (c: Buffer) => parts.push(c))
        res.on('end', () =>
          resolve({
            status: res.statusCode!,
            headers: res.headers,
            body: Buffer.concat(parts),
            reusedSocket: req.reusedSocket,
          }),
        )
        res.on('error', reject)
      },
    )
    req.on('timeout', () => req.destroy(new Error(`no answer to ${url} in ${options.timeoutMs ?? 30_000} ms`)))
    req.on('error', reject)
    if (chunked) for (const part of body as Buffer[]) req.write(part)
    else if (body) req.write(body)
    req.end()
  })
}

export const sha256 = (data: Buffer | readonly Buffer[]): string => {
  const hash = createHash('sha256')
  for (const part of Array.isArray(data) ? data : [data]) hash.update(part)
  return hash.digest('hex')
}

/** 10 MiB of varied bytes (not all alike, so a truncated or reordered body shows in the hash), in 64 KiB parts. */
export function tenMiB(): Buffer[] {
  const parts: Buffer[] = []
  for (let i = 0; i < 160; i++) parts.push(Buffer.alloc(64 * 1024, `part ${i} of the upload;`))
  return parts
}

/**
 * POST with `Expect: 100-continue`: the body is written only once the server
 * says 100 Continue. Resolves with whether it did, and the final answer.
 */
export function expectContinue(url: string, body: Buffer): Promise<{ continued: boolean; answer: Answer }> {
  return new Promise((resolve, reject) => {
    let continued = false
    const req = request(
      url,
      { method: 'POST', headers: { expect: '100-continue', 'content-length': String(body.length) }, timeout: 30_000 },
      (res) => {
        const parts: Buffer[] = []
        res.on('data', (c: Buffer) => parts.push(c))
        res.on('end', () =>
          resolve({
            continued,
            answer: { status: res.statusCode!, headers: res.headers, body: Buffer.concat(parts), reusedSocket: false },
          }),
        )
      },
    )
    req.on('continue', () => {
      continued = true
      req.end(body)
    })
    req.on('timeout', () => req.destroy(new Error('no answer to Expect: 100-continue in 30 s')))
    req.on('error', reject)
    req.flushHeaders()
  })
}

/** Reads `bytes` of a response, then destroys the connection: a client going away mid-response. */
export function abortAfter(url: string, bytes: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(url, { agent: false }, (res) => {
      let seen = 0
      res.on('data', (c: Buffer) => {
        seen += c.length
        if (seen >= bytes) {
          req.destroy()
          resolve(seen)
        }
      })
      res.on('end', () => reject(new Error(`the response ended after ${seen} bytes, before the client aborted`)))
    })
    req.on('error', (e) => {
      if (!req.destroyed) reject(e)
    })
    req.end()
  })
}

/** curl -F: a multipart form with one text field and one file. */
export function curlMultipart(url: string, field: [string, string], file: [string, string]): Promise<string> {
  return new Promise((resolve, reject) =>
    execFile(
      'curl',
      ['-sS', '--max-time', '60', '-F', `${field[0]}=${field[1]}`, '-F', `${file[0]}=@${file[1]}`, url],
      (error, stdout, stderr) => (error ? reject(new Error(`curl: ${stderr || error.message}`)) : resolve(stdout)),
    ),
  )
}

/** One HTTP/2 request over TLS (ALPN h2), trusting `ca`. */
export function h2(
  origin: string,
  ca: string,
  path: string,
  { method = 'GET', body }: { method?: string; body?: readonly Buffer[] } = {},
): Promise<{ status: number; body: Buffer; alpn: string | false }> {
  return new Promise((resolve, reject) => {
    const session = h2connect(origin, { ca })
    session.on('error', reject)
    const stream = session.request({ ':method': method, ':path': path })
    let status = 0
    const parts: Buffer[] = []
    stream.on('response', (headers) => (status = Number(headers[':status'])))
    stream.on('data', (c: Buffer) => parts.push(c))
    stream.on('end', () => {
      const alpn = session.alpnProtocol ?? false
      session.close()
      resolve({ status, body: Buffer.concat(parts), alpn })
    })
    stream.on('error', (e) => {
      session.destroy()
      reject(e)
    })
    stream.setTimeout(30_000, () => stream.close())
    if (body) for (const part of body) stream.write(part)
    stream.end()
  })
}
