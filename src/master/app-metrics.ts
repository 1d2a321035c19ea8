// The master's half of the app's own metrics (spec/metrics.md, "The app's
// metrics"): at a scrape, every worker is asked for its app's prom-client
// registry (src/worker/app-metrics.ts) and the answers that come within the
// timeout are handed to /metrics to merge. A worker that does not answer in
// time (stuck in a loop, busy, booting a slow app) is left out and counted:
// a scrape never waits longer than the timeout.
import type { ChildProcess } from 'node:child_process'
import type { AppMetricsAnswer, AppMetricsRequest } from '../protocol/master-worker.ts'

export interface AppMetricsGathered {
  /** Each answering worker's getMetricsAsJSON(), for workers whose app loaded prom-client. */
  readonly registries: unknown[][]
  /** Workers asked that did not answer within the timeout. */
  readonly missed: number
  /** Why a worker's registry could not be read, if one could not. */
  readonly errors: string[]
}

interface Scrape {
  readonly waiting: Set<ChildProcess>
  readonly answers: Map<ChildProcess, AppMetricsAnswer>
  done(): void
}

const workers = new Set<ChildProcess>()
const scrapes = new Map<number, Scrape>()
let lastSeq = 0

/** Follows one worker's answers; the pool calls it once per spawned worker. */
export function followAppMetrics(child: ChildProcess): void {
  workers.add(child)
  child.on('message', (message: Partial<AppMetricsAnswer> | null) => {
    if (message?.t !== 'app-metrics' || typeof message.seq !== 'number') return
    const scrape = scrapes.get(message.seq)
    if (!scrape?.waiting.delete(child)) return
    scrape.answers.set(child, message as AppMetricsAnswer)
    if (scrape.waiting.size === 0) scrape.done()
  })
  child.on('exit', () => {
    workers.delete(child)
    // A worker gone is not waited for (nor counted as missed: it has nothing left to say).
    for (const scrape of scrapes.values()) if (scrape.waiting.delete(child) && scrape.waiting.size === 0) scrape.done()
  })
}

/** Asks every live worker and gathers what comes back within `timeoutMs`. */
export function gatherAppMetrics(timeoutMs: number): Promise<AppMetricsGathered> {
  const seq = ++lastSeq
  const request: AppMetricsRequest = { t: 'app-metrics', seq }
  return new Promise((resolve) => {
    let timer: NodeJS.Timeout | undefined
    const scrape: Scrape = {
      waiting: new Set(),
      answers: new Map(),
      done() {
        clearTimeout(timer)
        scrapes.delete(seq)
        const answers = [...scrape.answers.values()]
        resolve({
          registries: answers.flatMap((a) => (Array.isArray(a.metrics) ? [a.metrics] : [])),
          missed: scrape.waiting.size,
          errors: answers.flatMap((a) => (a.error === undefined ? [] : [a.error])),
        })
      },
    }
    for (const child of workers) {
      if (!child.connected) continue
      try {
        child.send(request)
        scrape.waiting.add(child)
      } catch {
        // The channel closed between the check and the send: a worker on its way out.
      }
    }
    scrapes.set(seq, scrape)
    if (scrape.waiting.size === 0) return scrape.done()
    timer = setTimeout(() => scrape.done(), timeoutMs)
  })
}
