// Builds the inspector page (spec/inspector.md) into dist/inspector/index.html:
// src/inspector-ui/ with xstate, the machines and elkjs bundled into one
// self-contained file (styles and script inline), so the page needs no CDN
// and no second request, and opens as a file for the playground. elkjs is a
// devDependency: it reaches users only inside this file. The playground's
// "paths" are the master chart's graph-generated paths, explored here at build
// time by the module the path tests use (scripts/master-paths.ts) and stored
// compactly (src/inspector-ui/paths.ts). Run by scripts/build.ts; alone:
// node scripts/build-inspector.ts.
import { build } from 'esbuild'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { PATH_CODES, type PathsData } from '../src/inspector-ui/paths.ts'
import { explorationName, explorations, explore, pathEvents } from './master-paths.ts'

const root = fileURLToPath(new URL('..', import.meta.url))
export const INSPECTOR_PAGE = `${root}dist/inspector/index.html`

export async function buildInspector(): Promise<void> {
  const result = await build({
    absWorkingDir: root,
    entryPoints: ['src/inspector-ui/app.ts'],
    bundle: true,
    platform: 'browser',
    format: 'iife',
    target: 'es2022',
    minify: true,
    write: false,
    legalComments: 'none',
    logLevel: 'warning',
  })
  // Inline: a `</script` inside the bundle would end the element early.
  const script = result.outputFiles[0]!.text.replaceAll('</script', '<\\/script')
  const html = readFileSync(`${root}src/inspector-ui/index.html`, 'utf8')
    .replace('/*STYLE*/', () => readFileSync(`${root}src/inspector-ui/style.css`, 'utf8'))
    // JSON inside <script type="application/json">: no `<` may close it early.
    .replace('"PATHS"', () => JSON.stringify(generatedPaths()).replaceAll('<', '\\u003c'))
    .replace('/*SCRIPT*/', () => script)
  mkdirSync(`${root}dist/inspector`, { recursive: true })
  writeFileSync(INSPECTOR_PAGE, html)
}

/** Every exploration's paths, each event and end state stored once and named by a character. */
function generatedPaths(): PathsData {
  const events: string[] = []
  const ends: string[] = []
  const codeOf = (table: string[], item: unknown) => {
    const key = JSON.stringify(item)
    let i = table.indexOf(key)
    if (i < 0) i = table.push(key) - 1
    const c = PATH_CODES[i]
    if (c === undefined) throw new Error(`build-inspector: more than ${PATH_CODES.length} distinct path events or ends`)
    return c
  }
  const stored = explorations.map((x) => ({
    name: explorationName(x),
    input: x.input,
    paths: explore(x)
      .map(
        (path) =>
          codeOf(ends, path.state.value) +
          pathEvents(path)
            .map((e) => codeOf(events, e))
            .join(''),
      )
      .join(' '),
  }))
  return { events: events.map((e) => JSON.parse(e)), ends: ends.map((e) => JSON.parse(e)), explorations: stored }
}

if (import.meta.main) await buildInspector()
