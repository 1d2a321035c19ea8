// How the property tests pick their runs, from the environment, so that any
// failure replays exactly (spec/model-fidelity.md):
//   FC_SEED   the seed (default: a fixed one, so `npm test` is the same run
//             everywhere; CI adds a run with a rotating seed it logs);
//   FC_PATH   the path fast-check printed with the failure: replays that one
//             counterexample, shrunk, and nothing else;
//   FC_RUNS   a factor on each property's number of runs (npm run model:long).
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

export function replayParams(numRuns: number): ReplayParams {
  const seed = process.env.FC_SEED ? Number(process.env.FC_SEED) : FIXED_SEED
  const path = process.env.FC_PATH || undefined
  const factor = process.env.FC_RUNS ? Number(process.env.FC_RUNS) : 1
  return {
    seed,
    ...(path !== undefined && { path, endOnFailure: true }),
    numRuns: Math.max(1, Math.round(numRuns * factor)),
    reporter: (details) => {
      if (!details.failed) return
      const replay = `FC_SEED=${details.seed} FC_PATH=${details.counterexamplePath}`
      throw new Error(`Property failed; replay with: ${replay} npx vitest run <this file>\n${reportOf(details)}`)
    },
  }
}

function reportOf(details: Outcome): string {
  const error = details.errorInstance
  const message = error instanceof Error ? error.message : String(error)
  return `after ${details.numRuns} run(s), shrunk ${details.numShrinks} time(s): ${message}`
}
