// Builds the inspector page (spec/inspector.md) into dist/inspector/index.html:
// src/inspector-ui/ with xstate, the machines and elkjs bundled into one
// self-contained file (styles and script inline), so the page needs no CDN
// and no second request, and opens as a file for the playground. elkjs is a
// devDependency: it reaches users only inside this file. Run by
// scripts/build.ts; alone: node scripts/build-inspector.ts.
import { build } from 'esbuild'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

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
    .replace('/*SCRIPT*/', () => script)
  mkdirSync(`${root}dist/inspector`, { recursive: true })
  writeFileSync(INSPECTOR_PAGE, html)
}

if (import.meta.main) await buildInspector()
