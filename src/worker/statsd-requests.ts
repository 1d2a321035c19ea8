// --statsd-host in a worker (spec/metrics.md, "StatsD"): gunicorn's request
// metrics, corral.requests, corral.request.status.CODE (counted, sent once
// a second) and corral.request.duration (a timer line per request, batched
// into datagrams by src/net/statsd.ts). Per request: a performance.now() and
// one 'close' listener, a shared function.
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Statsd } from '../net/statsd.ts'

type Handler = (req: IncomingMessage, res: ServerResponse) => void

interface Timed extends ServerResponse {
  corralStatsdStart: number
}

/** Wraps a handler so that every response is counted and timed; unchanged without a client. */
export function withStatsd(handler: Handler, statsd: Statsd | undefined): Handler {
  if (!statsd) return handler
  // Loaded only with a StatsD client: a worker without one starts without node:perf_hooks.
  const { performance } = process.getBuiltinModule('node:perf_hooks')
  // One name per status code, made once.
  const statusNames = new Map<number, string>()
  function onClose(this: Timed): void {
    statsd!.timing('request.duration', performance.now() - this.corralStatsdStart)
    statsd!.count('requests')
    let name = statusNames.get(this.statusCode)
    if (name === undefined) {
      name = `request.status.${this.statusCode}`
      statusNames.set(this.statusCode, name)
    }
    statsd!.count(name)
  }
  return (req, res) => {
    const r = res as Timed
    r.corralStatsdStart = performance.now()
    r.on('close', onClose)
    handler(req, res)
  }
}
