// Mutation testing of the statecharts (spec/model-fidelity.md): every mutant
// of machines/ should make a machine or model test fail. `npm run mutation`
// runs all of them; `npm run mutation:changed` only the mutants whose code or
// tests changed since the last run (the incremental file is kept in reports/).
export default {
  mutate: ['machines/**/*.ts'],
  testRunner: 'vitest',
  vitest: { configFile: 'vitest.machines.config.ts' },
  coverageAnalysis: 'perTest',
  checkers: [],
  concurrency: 2,
  reporters: ['clear-text', 'progress', 'html', 'json'],
  htmlReporter: { fileName: 'reports/mutation/index.html' },
  jsonReporter: { fileName: 'reports/mutation/mutation.json' },
  incrementalFile: 'reports/stryker-incremental.json',
  thresholds: { high: 95, low: 90, break: null },
  timeoutMS: 20_000,
  tempDirName: '.stryker-tmp',
}
