import { defineConfig } from 'vitest/config'

// The pure statecharts' own tests: what mutation testing (npm run mutation)
// runs against each mutant of machines/. No processes, no sockets: threads
// are fine here, and fast.
export default defineConfig({
  test: {
    include: [
      'test/master-machine.test.ts',
      'test/master-model.test.ts',
      'test/master-log.test.ts',
      'test/master-scenarios.test.ts',
      'test/master-upgrade-model.test.ts',
      'test/worker-machine.test.ts',
      'test/dirty-pool-model.test.ts',
    ],
    maxWorkers: 2,
    // Instrumented for mutation testing the property tests run several times slower.
    testTimeout: 120_000,
  },
})
