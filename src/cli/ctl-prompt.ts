// `corral ctl` with no command: a prompt with history, completion and help,
// or, on a pipe, one command per line (exit 1 if any failed).
import { createInterface } from 'node:readline'
import { COMMANDS } from '../master/control-commands.ts'
import type { ControlResponse } from '../protocol/control.ts'
import { open } from './ctl-client.ts'

// Optional words in brackets complete too ([quick]); placeholders (N, PID) do not.
const WORDS: readonly (readonly string[])[] = COMMANDS.map((c) =>
  c
    .split(' ')
    .map((w) => w.replace(/^\[(.*)\]$/, '$1'))
    .filter((w) => !/^[A-Z]/.test(w)),
)

/** Completes the word under the cursor from the commands that start with the words before it. */
export function complete(line: string): [string[], string] {
  const words = line.split(/\s+/)
  const last = words.pop() ?? ''
  const options = new Set<string>()
  for (const command of [...WORDS, ['quit']]) {
    if (words.every((w, i) => command[i] === w) && command[words.length]?.startsWith(last))
      options.add(`${command[words.length]} `)
  }
  return [[...options], last]
}

/** `print` shows an answer and returns its exit code. */
export async function interactive(socket: string, print: (response: ControlResponse) => number): Promise<number> {
  const connection = await open(socket)
  const prompt = process.stdin.isTTY
  const rl = createInterface({
    input: process.stdin,
    output: process.stdout,
    terminal: prompt,
    historySize: 200,
    completer: complete,
  })
  if (prompt) {
    process.stdout.write(`Connected to ${socket}. Type help for the commands, quit to leave.\n`)
    rl.setPrompt('corral> ')
    rl.prompt()
  }
  let failures = 0
  for await (const line of rl) {
    const words = line.trim().split(/\s+/).filter(Boolean)
    if (words[0] === 'quit' || words[0] === 'exit') break
    if (words.length > 0) {
      if (words[0] === 'help') process.stdout.write(`${COMMANDS.join('\n')}\nquit\n`)
      else if (print(await connection.request(words)) !== 0) failures++
    }
    if (prompt) rl.prompt()
  }
  rl.close()
  connection.close()
  return failures > 0 && !prompt ? 1 : 0
}
