// Mutation testing of what changed in machines/ since the last scored run
// (325f6ae, spec/model-fidelity.md "Mutation testing"): the added and changed
// line ranges only, one test process at a time on a shared machine. Re-create
// the ranges with: git diff -U0 325f6ae -- machines/
// MUTATE_FILE=worker.ts (or master.ts, master-workers.ts) keeps one file's
// ranges: each file is then a run of its own, with its own report, against
// only the tests that import it (the vitest runner's `related`).
import base from './stryker.config.mjs'

const changed = [
  'machines/master-workers.ts:36-42',
  'machines/master-workers.ts:46-47',
  'machines/master-workers.ts:62-63',
  'machines/master-workers.ts:73-74',
  'machines/master-workers.ts:78-80',
  'machines/master-workers.ts:104-105',
  'machines/master-workers.ts:148-153',
  'machines/master-workers.ts:200-200',
  'machines/master-workers.ts:207-207',
  'machines/master-workers.ts:209-209',
  'machines/master-workers.ts:211-216',
  'machines/master-workers.ts:219-231',
  'machines/master-workers.ts:266-272',
  'machines/master-workers.ts:277-278',
  'machines/master-workers.ts:280-325',
  'machines/master-workers.ts:329-329',
  'machines/master-workers.ts:334-334',
  'machines/master-workers.ts:341-341',
  'machines/master.ts:47-49',
  'machines/master.ts:51-51',
  'machines/master.ts:108-108',
  'machines/master.ts:169-176',
  'machines/master.ts:340-341',
  'machines/master.ts:353-356',
  'machines/master.ts:371-372',
  'machines/master.ts:380-382',
  'machines/master.ts:385-385',
  'machines/master.ts:397-400',
  'machines/master.ts:415-418',
  'machines/master.ts:424-424',
  'machines/worker.ts:35-36',
  'machines/worker.ts:67-68',
  'machines/worker.ts:79-81',
  'machines/worker.ts:84-91',
  'machines/worker.ts:94-96',
  'machines/worker.ts:107-107',
  'machines/worker.ts:141-146',
  'machines/worker.ts:148-148',
  'machines/worker.ts:150-150',
  'machines/worker.ts:171-171',
  'machines/worker.ts:175-175',
  'machines/worker.ts:185-186',
  'machines/worker.ts:200-200',
  'machines/worker.ts:209-223',
]
const only = process.env.MUTATE_FILE

export default {
  ...base,
  mutate: only ? changed.filter((range) => range.startsWith(`machines/${only}:`)) : changed,
  concurrency: 1,
  incremental: false,
  htmlReporter: { fileName: `reports/mutation-changed/${only ?? 'all'}.html` },
  jsonReporter: { fileName: `reports/mutation-changed/${only ?? 'all'}.json` },
}
