// The worker's half of the app's own metrics (spec/metrics.md, "The app's
// metrics"): when the master asks, it answers with the default registry of
// the prom-client the app loaded, as prom-client's getMetricsAsJSON() gives
// it (what AggregatorRegistry's workers send under node:cluster). corral
// loads no prom-client of its own here: it looks for the app's in Node's
// module cache, and an app that never loaded one gets an empty answer.
// Nothing of this runs until a scrape asks.
import { createRequire } from 'node:module'
import { sep } from 'node:path'
import type { AppMetricsAnswer, AppMetricsRequest } from '../protocol/master-worker.ts'

interface PromClient {
  register?: { getMetricsAsJSON(): unknown[] | Promise<unknown[]> }
}

const MAIN = `${sep}node_modules${sep}prom-client${sep}index.js`

/** Answers the master's app-metrics requests; `appFile` is where the app's own prom-client is resolved from. */
export function serveAppMetrics(appFile: string, send: (answer: AppMetricsAnswer) => void): void {
  const cache = createRequire(import.meta.url).cache
  // Where the app's `require('prom-client')` leads: resolved once, at the first scrape.
  let resolved: string | null | undefined

  function appPromClient(): PromClient | undefined {
    if (resolved === undefined) {
      try {
        resolved = createRequire(appFile).resolve('prom-client')
      } catch {
        resolved = null
      }
    }
    const own = resolved === null ? undefined : cache[resolved]
    if (own) return own.exports as PromClient
    // Loaded from elsewhere (a framework's plugin with its own copy): the first one loaded.
    for (const [path, mod] of Object.entries(cache)) if (path.endsWith(MAIN) && mod) return mod.exports as PromClient
    return undefined
  }

  process.on('message', (message: Partial<AppMetricsRequest> | null) => {
    if (message?.t !== 'app-metrics' || typeof message.seq !== 'number') return
    const seq = message.seq
    const register = appPromClient()?.register
    if (!register) return send({ t: 'app-metrics', seq, metrics: null })
    Promise.resolve()
      .then(() => register.getMetricsAsJSON())
      .then(
        (metrics) => send({ t: 'app-metrics', seq, metrics }),
        (err: unknown) =>
          send({ t: 'app-metrics', seq, metrics: null, error: err instanceof Error ? err.message : String(err) }),
      )
  })
}
