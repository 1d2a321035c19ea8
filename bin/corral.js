#!/usr/bin/env node
// The sources are TypeScript run natively (type stripping, Node >= 22.18 by
// default); this file stays JavaScript so that any Node can start it and say so.
const [major, minor] = process.versions.node.split('.').map(Number)
if (major < 22 || (major === 22 && minor < 12)) {
  process.stderr.write(`corral: needs Node.js >= 22.12 (this is ${process.version})\n`)
  process.exit(1)
}
const { main } = await import('../src/cli.ts')
// Exit explicitly: a stray handle in user code must not keep a stopped master alive.
process.exit(await main(process.argv.slice(2)))
