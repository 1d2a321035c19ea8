// Node reports a syntax error in an ES module (an app, a config file, or a
// module either imports) with a stack of its own internals and no file, line
// or column; a CommonJS or TypeScript module's error does carry them. The
// location is printed only when such an error goes uncaught, so it is found
// by importing the module again in a child Node that prints it.
import { fileURLToPath, pathToFileURL } from 'node:url'

/** A parse error: its stack names no file, only Node's module loader. */
function isParseError(err: unknown): err is SyntaxError {
  if (!(err instanceof SyntaxError) || err.stack === undefined) return false
  const frames = err.stack.split('\n').filter((line) => /^\s+at /.test(line))
  return err.stack.startsWith('SyntaxError') && frames.every((line) => line.includes('node:'))
}

/**
 * `FILE:LINE:COLUMN: SyntaxError: …` with the offending line and a caret
 * under it, for a parse error in `file` or a module it imports; undefined for
 * any other error (which names its location already), or when not found.
 */
export function locateSyntaxError(err: unknown, file: string): string | undefined {
  if (!isParseError(err)) return undefined
  // The first import exits before anything is evaluated: once the graph
  // parses and links, nothing of the app runs in the child.
  const source = `import 'data:text/javascript,process.exit(0)'; import ${JSON.stringify(pathToFileURL(file).href)}`
  const flags = process.execArgv.filter((a) => !a.startsWith('--inspect'))
  // Loaded here, on the error path only: a worker starting up should not pay for node:child_process.
  const { spawnSync } = process.getBuiltinModule('node:child_process')
  const child = spawnSync(process.execPath, [...flags, '--input-type=module', '-e', source], {
    encoding: 'utf8',
    timeout: 10_000,
    stdio: ['ignore', 'ignore', 'pipe'],
  })
  // Node prints the line and a caret under the column; for "Unexpected end of
  // input" the line is the one past the end, shown empty and with no caret.
  const m = /^(file:\/\/\S+?):(\d+)\n(.*)\n( *)(\^*) *\n\s*(SyntaxError: .*)$/m.exec(child.stderr ?? '')
  if (!m) return undefined
  const [, url, line, code, pad, caret, message] = m as unknown as [
    string,
    string,
    string,
    string,
    string,
    string,
    string,
  ]
  if (caret === '')
    return `${fileURLToPath(url)}:${line}: ${message}${code.trim() === '' ? ' (the file ends before the code does)' : `\n${code}`}`
  return `${fileURLToPath(url)}:${line}:${pad.length + 1}: ${message}\n${code}\n${pad}^`
}
