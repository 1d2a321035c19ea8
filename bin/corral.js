#!/usr/bin/env node
// Stays JavaScript so that any Node can start it and say what it needs.
import { readdirSync, statSync } from 'node:fs'

const [major, minor] = process.versions.node.split('.').map(Number)
if (major < 22 || (major === 22 && minor < 12)) {
  process.stderr.write(`corral: needs Node.js >= 22.12 (this is ${process.version})\n`)
  process.exit(1)
}

const root = new URL('../', import.meta.url)

/** Newest modification time of the sources the bundle is built from. */
function newestSource() {
  let newest = 0
  for (const dir of ['src', 'machines']) {
    for (const name of readdirSync(new URL(`${dir}/`, root), { recursive: true })) {
      newest = Math.max(newest, statSync(new URL(`${dir}/${name}`, root)).mtimeMs)
    }
  }
  return newest
}

/**
 * The bundle in dist/ (npm run build) when it is newer than every source:
 * it saves each process the type stripper and most module-loading memory.
 * Otherwise the TypeScript sources, run natively; CORRAL_FROM_SOURCE=1 forces
 * that.
 */
function entry() {
  if (process.env.CORRAL_FROM_SOURCE !== '1') {
    try {
      if (statSync(new URL('dist/cli.js', root)).mtimeMs >= newestSource()) return '../dist/cli.js'
    } catch {
      // no bundle: run the sources
    }
  }
  return '../src/cli/main.ts'
}

const { main } = await import(entry())
// Exit explicitly: a stray handle in user code must not keep a stopped master alive.
process.exit(await main(process.argv.slice(2)))
