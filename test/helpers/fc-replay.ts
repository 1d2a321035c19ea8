// How the property tests pick their runs, from the environment, so that any
// failure replays exactly (spec/model-fidelity.md):
//   FC_SEED   the seed (default: a fixed one, so `npm test` is the same run
//             everywhere; CI adds a run with a rotating seed it logs);
//   FC_PATH   the path fast-check printed with the failure: replays that one
//             counterexample, shrunk, and nothing else;
//   FC_RUNS   a factor on each property's number of runs (npm run model:long);
//   FC_DEPTH  a factor on the longest sequence a model test generates
//             (npm run model:long); a path replays only with the same one.
// fast-check itself prints `{ seed, path }` with every failure; the message
// below adds the command line that replays it.
const FIXED_SEED = 20_261_130

interface ReplayParams {
  seed: number
  path?: string
  endOnFailure?: boolean
  numRuns: number
  reporter: (details: Outcome) => void
}

/** What the reporter reads of fast-check's RunDetails, whatever the property's arguments. */
interface Outcome {
  failed: boolean
  seed: number
  counterexamplePath: string | null
  numRuns: number
  numShrinks: number
  errorInstance: unknown
}

const factor = (name: string) => (process.env[name] ? Number(process.env[name]) : 1)

/** Whether this run replays one counterexample (FC_PATH), not the property's runs. */
export const replaying = Boolean(process.env.FC_PATH)

/** The longest sequence a model test generates: its default times FC_DEPTH. */
export function sequenceLength(length: number): number {
  return Math.max(1, Math.round(length * factor('FC_DEPTH')))
}

/** A distribution of counts, for a test's report: `min 0, median 31, mean 33.2, p90 64, max 120 (700 runs)`. */
export function distribution(values: readonly number[]): string {
  const sorted = [...values].sort((a, b) => a - b)
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * q))]
  const mean = sorted.reduce((sum, v) => sum + v, 0) / Math.max(1, sorted.length)
  return `min ${sorted[0]}, median ${at(0.5)}, mean ${mean.toFixed(1)}, p90 ${at(0.9)}, max ${sorted.at(-1)} (${sorted.length} runs)`
}

export function replayParams(numRuns: number): ReplayParams {
  const seed = process.env.FC_SEED ? Number(process.env.FC_SEED) : FIXED_SEED
  const path = process.env.FC_PATH || undefined
  return {
    seed,
    ...(path !== undefined && { path, endOnFailure: true }),
    numRuns: Math.max(1, Math.round(numRuns * factor('FC_RUNS'))),
    reporter: (details) => {
      if (!details.failed) return
      const depth = process.env.FC_DEPTH ? ` FC_DEPTH=${process.env.FC_DEPTH}` : ''
      const replay = `FC_SEED=${details.seed} FC_PATH=${details.counterexamplePath}${depth}`
      throw new Error(`Property failed; replay with: ${replay} npx vitest run <this file>\n${reportOf(details)}`)
    },
  }
}

function reportOf(details: Outcome): string {
  const error = details.errorInstance
  const message = error instanceof Error ? error.message : String(error)
  return `after ${details.numRuns} run(s), shrunk ${details.numShrinks} time(s): ${message}`
}
