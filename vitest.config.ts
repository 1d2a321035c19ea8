import { defineConfig } from 'vitest/config'

// Forks, not threads: end-to-end tests send real signals, and under threads a
// process.kill(process.pid, …) would hit the runner itself. Two cores here, so
// keep concurrency modest: e2e files start several processes each.
export default defineConfig({
  test: {
    pool: 'forks',
    maxWorkers: 2,
    testTimeout: 30_000,
    hookTimeout: 30_000,
    include: ['test/**/*.test.ts'],
  },
})
