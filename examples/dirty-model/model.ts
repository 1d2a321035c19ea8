// The "model": a large in-memory table (MODEL_MB megabytes, default 300),
// built once by init(), as loading real weights would be. predict() does a
// little arithmetic over it. Loaded by one dirty worker (app.ts) or by every
// HTTP worker (inline.ts): measure.ts compares what the two layouts cost.
const megabytes = Number(process.env.MODEL_MB ?? 300)

export class Model {
  table = new Float64Array(0)

  init(): void {
    this.table = new Float64Array((megabytes * 1024 * 1024) / 8)
    // Written through, so the pages are really resident (an untouched allocation costs nothing).
    for (let i = 0; i < this.table.length; i++) this.table[i] = Math.sin(i)
  }

  /** A dot product of `features` with the rows of the table they pick. */
  predict(features: number[]): number {
    let score = 0
    for (const [i, f] of features.entries())
      score += f * (this.table[(i * 7919 + Math.floor(f * 1e6)) % this.table.length] ?? 0)
    return score
  }
}
