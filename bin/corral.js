#!/usr/bin/env node
// Stays JavaScript so that any Node can start it and say what it needs.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs'
import module from 'node:module'

const [major, minor] = process.versions.node.split('.').map(Number)
if (major < 22 || (major === 22 && minor < 12)) {
  process.stderr.write(`corral: needs Node.js 22.12 or later (22 LTS, 24 LTS or newer); this is ${process.version}\n`)
  process.exit(1)
}

const root = new URL('../', import.meta.url)

// Every start after the first reads the bundle compiled already (Node keeps
// the cache in the temp directory and checks each source's hash).
module.enableCompileCache?.()

// The version alone needs nothing else loaded: `npx corral --version` answers as fast as any bin.
const args = process.argv.slice(2)
if (args.length === 1 && (args[0] === '--version' || args[0] === '-v') && !process.env.CORRAL_CMD_ARGS) {
  const { version } = JSON.parse(readFileSync(new URL('package.json', root), 'utf8'))
  process.stdout.write(`corral ${version}\n`)
  process.exit(0)
}

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
 * Installed (the package ships dist/ and no sources): the bundle, always.
 * Inside the repository checkout (src/ beside bin/): the bundle when it is
 * newer than every source (npm run build), else the TypeScript sources, run
 * natively, so an edit is never run stale; CORRAL_FROM_SOURCE=1 forces them.
 */
async function entry() {
  if (!existsSync(new URL('src/cli/main.ts', root))) return '../dist/cli.js'
  // A config file in the checkout imports 'corral' like a user's: from the sources.
  if (existsSync(new URL('scripts/resolve-self.js', root))) await import('../scripts/resolve-self.js')
  if (process.env.CORRAL_FROM_SOURCE !== '1') {
    try {
      // worker.js is the build's last file (scripts/build.ts): newer than every source, the bundle is whole.
      if (statSync(new URL('dist/worker.js', root)).mtimeMs >= newestSource()) return '../dist/cli.js'
    } catch {
      // no bundle: run the sources
    }
  }
  return '../src/cli/main.ts'
}

const { main } = await import(await entry())
// Exit explicitly: a stray handle in user code must not keep a stopped master alive.
process.exit(await main(args))
