// What a worker counts for `corral ctl` and /metrics (spec/metrics.md):
// requests by status class, in flight, open connections, and with
// --metrics-bind their durations. Per request: two counter increments and a
// 'close' listener; everything reaches the master in one small IPC message
// a second (cumulative totals), never a message per request.
import type { IncomingMessage, Server, ServerResponse } from 'node:http'
import { DURATION_BUCKETS, type WorkerStatsMessage } from '../protocol/master-worker.ts'

type Handler = (req: IncomingMessage, res: ServerResponse) => void

/** How often the counters go to the master: `corral ctl top` refreshes at this pace. */
const REPORT_MS = 1000

export interface RequestStats {
  wrap(handler: Handler): Handler
  /** Reports every REPORT_MS until stop(). */
  start(servers: readonly Server[], send: (message: WorkerStatsMessage) => void): void
  /** Stops the timer and sends a last report, so a leaving worker's final requests are counted. */
  stop(): void
}

export function createRequestStats({ durations }: { durations: boolean }): RequestStats {
  let requests = 0
  let inFlight = 0
  const byClass: WorkerStatsMessage['byClass'] = [0, 0, 0, 0, 0]
  const bucketCounts = new Array<number>(DURATION_BUCKETS.length + 1).fill(0)
  let durationSum = 0
  let timer: NodeJS.Timeout | undefined
  let report: (() => void) | undefined

  function observe(seconds: number): void {
    durationSum += seconds
    let i = 0
    while (i < DURATION_BUCKETS.length && seconds > DURATION_BUCKETS[i]!) i++
    bucketCounts[i]!++
  }

  return {
    wrap(handler) {
      return (req, res) => {
        requests++
        inFlight++
        const started = durations ? performance.now() : 0
        // 'close' comes for every response, finished or cut off.
        res.once('close', () => {
          inFlight--
          const cls = Math.floor(res.statusCode / 100) - 1
          if (cls >= 0 && cls < 5) byClass[cls]!++
          if (durations) observe((performance.now() - started) / 1000)
        })
        handler(req, res)
      }
    },
    start(servers, send) {
      report = () => {
        let connections = 0
        for (const server of servers) connections += (server as unknown as { _connections: number })._connections ?? 0
        const cpu = process.cpuUsage()
        send({
          t: 'stats',
          requests,
          byClass: [...byClass],
          inFlight,
          connections,
          rssBytes: process.memoryUsage.rss(),
          cpuMicros: cpu.user + cpu.system,
          ...(durations ? { durations: { counts: [...bucketCounts], sum: durationSum } } : {}),
        })
      }
      report()
      timer = setInterval(report, REPORT_MS)
      timer.unref()
    },
    stop() {
      clearInterval(timer)
      report?.()
      report = undefined
    },
  }
}
