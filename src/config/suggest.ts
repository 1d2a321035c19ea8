// Typo suggestions: "unknown option --wrokers (did you mean --workers?)",
// for flags (src/config/command-line.ts) and for config-file keys (src/config/resolve.ts, src/config/sources.ts).

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j)
  for (let i = 1; i <= a.length; i++) {
    const cur = [i]
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1
      cur[j] = Math.min((prev[j] ?? 0) + 1, (cur[j - 1] ?? 0) + 1, (prev[j - 1] ?? 0) + cost)
    }
    prev = cur
  }
  return prev[b.length] ?? 0
}

/** The candidate closest to `word`, if close enough to be a plausible typo or abbreviation. */
export function closest(word: string, candidates: Iterable<string>): string | undefined {
  const all = [...candidates]
  const extending = all.filter((c) => c.startsWith(word))
  if (extending.length === 1) return extending[0]
  let best: string | undefined
  let bestDistance = Infinity
  for (const c of all) {
    const d = editDistance(word.toLowerCase(), c.toLowerCase())
    if (d < bestDistance) {
      best = c
      bestDistance = d
    }
  }
  return bestDistance <= Math.max(2, Math.floor(word.length / 3)) ? best : undefined
}

/** ` (did you mean X?)`, or '' when nothing is close. */
export function suggestion(word: string, candidates: Iterable<string>): string {
  const c = closest(word, candidates)
  return c === undefined ? '' : ` (did you mean ${c}?)`
}
