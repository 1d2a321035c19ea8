import { readdirSync, readFileSync } from 'node:fs'
import { defineConfig } from 'vitest/config'

// `npm run test:fast`: the pure and in-process tests, the ones that start no
// process (no corral, no browser, no nginx, no other Node), in seconds. A test
// file is one of them unless it reaches for child processes, directly or
// through a helper that starts them; so a new file sorts itself.
const STARTS_PROCESSES = /node:child_process|helpers\/(corral|browser|nginx|node22|tls-certs)\.ts/
const fast = readdirSync('test')
  .filter((f) => f.endsWith('.test.ts'))
  .filter((f) => !STARTS_PROCESSES.test(readFileSync(`test/${f}`, 'utf8')))
  .map((f) => `test/${f}`)

export default defineConfig({
  test: {
    include: fast,
    maxWorkers: 2,
    testTimeout: 300_000,
  },
})
