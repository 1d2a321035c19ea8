import { availableParallelism, loadavg } from 'node:os'
import { defineConfig } from 'vitest/config'

// A test's timeout is a hang guard, not a threshold, and the only clock its
// waits have (test/helpers/corral.ts): on a machine already busy when the run
// starts (load above its core count) every test gets proportionally longer,
// up to four times.
const busy = Math.min(4, Math.max(1, loadavg()[0]! / availableParallelism()))

// Forks, not threads: end-to-end tests send real signals, and under threads a
// process.kill(process.pid, …) would hit the runner itself. Two cores here, so
// keep concurrency modest: e2e files start several processes each.
export default defineConfig({
  test: {
    pool: 'forks',
    maxWorkers: 2,
    testTimeout: Math.round(30_000 * busy),
    hookTimeout: Math.round(30_000 * busy),
    include: ['test/**/*.test.ts'],
  },
})
