// CORRAL_CMD_ARGS is one string of flags, written as a shell would quote
// them (a systemd unit's Environment=, a Dockerfile's ENV): this splits it.

/**
 * Splits a command line the way a POSIX shell splits words, without
 * expansions: whitespace separates, '…' is literal, "…" allows \" \\ \$ \`,
 * a backslash outside quotes escapes the next character. Returns the reason
 * as a string when the text cannot be split (an unterminated quote).
 */
export function splitShellWords(text: string): string[] | string {
  const words: string[] = []
  let word = ''
  let inWord = false
  let i = 0
  while (i < text.length) {
    const c = text[i]!
    if (c === "'") {
      const end = text.indexOf("'", i + 1)
      if (end < 0) return 'unterminated single quote'
      word += text.slice(i + 1, end)
      inWord = true
      i = end + 1
    } else if (c === '"') {
      inWord = true
      i++
      for (;;) {
        if (i >= text.length) return 'unterminated double quote'
        const d = text[i]!
        if (d === '"') {
          i++
          break
        }
        const next = text[i + 1]
        if (d === '\\' && next !== undefined && '"\\$`\n'.includes(next)) {
          if (next !== '\n') word += next
          i += 2
        } else {
          word += d
          i++
        }
      }
    } else if (c === '\\') {
      const next = text[i + 1]
      if (next === undefined) return 'ends with a lone backslash'
      if (next !== '\n') {
        word += next
        inWord = true
      }
      i += 2
    } else if (/\s/.test(c)) {
      if (inWord) words.push(word)
      word = ''
      inWord = false
      i++
    } else {
      word += c
      inWord = true
      i++
    }
  }
  if (inWord) words.push(word)
  return words
}
