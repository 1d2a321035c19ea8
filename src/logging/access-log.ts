// The access log, in a worker: one line per response, written when the
// response closes (finished, or cut short by the client), through a buffered
// log file. What a request costs: a timestamp, one 'close' listener (a shared
// function, no closure), and, only when the format has %(b)s or %(B)s, a
// byte count kept by own-property write/end wrappers (own properties, because
// Express swaps the response's prototype for its own).
import type { IncomingMessage, ServerResponse } from 'node:http'
import { compileAccessLog, type FormatLine } from './access-log-format.ts'
import { openLogFile, type LogFile } from './log-file.ts'

type Handler = (req: IncomingMessage, res: ServerResponse) => void

export interface AccessLogSettings {
  readonly accessLogfile: string | undefined
  readonly accessLogformat: string
  readonly accessLogJson: boolean
}

type Write = (chunk: unknown, encoding?: unknown, cb?: unknown) => boolean
type End = (chunk?: unknown, encoding?: unknown, cb?: unknown) => ServerResponse

interface Logged extends ServerResponse {
  corralStart: number
  corralBytes: number
  /** The response's own write and end, whatever class it is (an HTTP/2 compat response too). */
  corralWrite: Write
  corralEnd: End
}

function byteLength(chunk: unknown, encoding: unknown): number {
  if (typeof chunk === 'string')
    return Buffer.byteLength(chunk, typeof encoding === 'string' ? (encoding as BufferEncoding) : 'utf8')
  if (chunk instanceof Uint8Array) return chunk.byteLength
  return 0
}

function countingWrite(this: Logged, chunk: unknown, encoding?: unknown, cb?: unknown): boolean {
  this.corralBytes += byteLength(chunk, encoding)
  return this.corralWrite(chunk, encoding, cb)
}

function countingEnd(this: Logged, chunk?: unknown, encoding?: unknown, cb?: unknown): ServerResponse {
  if (typeof chunk !== 'function') this.corralBytes += byteLength(chunk, encoding)
  return this.corralEnd(chunk, encoding, cb)
}

const noBody = (req: IncomingMessage, status: number) => req.method === 'HEAD' || status === 204 || status === 304

/**
 * Wraps a handler so that every response is logged; returns it unchanged
 * when no --access-logfile is set. Opens the log file now (throws, naming
 * the flag, if it cannot).
 */
export function withAccessLog(
  handler: Handler,
  settings: AccessLogSettings,
  reportError: (message: string, err: unknown) => void,
): Handler {
  if (settings.accessLogfile === undefined) return handler
  // Loaded only with an access log: a worker without one starts without node:perf_hooks.
  const { performance } = process.getBuiltinModule('node:perf_hooks')
  const { format, needsBytes } = compileAccessLog(settings.accessLogformat, { json: settings.accessLogJson })
  const file: LogFile = openLogFile(settings.accessLogfile, { stream: 'stdout', label: '--access-logfile' })
  const line: FormatLine = format
  let failed = false

  function onClose(this: Logged): void {
    const req = this.req
    try {
      const bytes = needsBytes && !noBody(req, this.statusCode) ? this.corralBytes : 0
      file.write(line(req, this, performance.now() - this.corralStart, bytes))
    } catch (err) {
      // A line we cannot format must never cost the request or the worker.
      if (!failed) reportError('Access log line could not be formatted', err)
      failed = true
    }
  }

  if (needsBytes) {
    return (req, res) => {
      const r = res as Logged
      r.corralStart = performance.now()
      r.corralBytes = 0
      r.corralWrite = r.write as Write
      r.corralEnd = r.end as End
      r.write = countingWrite as Logged['write']
      r.end = countingEnd as Logged['end']
      r.on('close', onClose)
      handler(req, res)
    }
  }
  return (req, res) => {
    const r = res as Logged
    r.corralStart = performance.now()
    r.on('close', onClose)
    handler(req, res)
  }
}
