// Bundles the master (cli) and the worker into dist/ as one JavaScript file
// each. The TypeScript sources run as they are; the bundles exist for memory:
// type stripping loads a ~20 MB WebAssembly module into every process that
// imports a .ts file, and loading effect and xstate as hundreds of separate
// ES modules costs tens of MB more. bin/corral.js uses the bundles only when
// they are newer than every source file, so an edit is never run stale.
import { build } from 'esbuild'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('..', import.meta.url))

await build({
  absWorkingDir: root,
  entryPoints: { cli: 'src/cli/main.ts', worker: 'src/worker/main.ts' },
  outdir: 'dist',
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node22.12',
  // Loaded on demand, for fetch apps only; a user's app resolves its own.
  external: ['@hono/node-server'],
  // Bundled CommonJS (xstate) may call require for Node built-ins.
  banner: {
    js: "import { createRequire as __corralRequire } from 'node:module'; const require = __corralRequire(import.meta.url);",
  },
  logLevel: 'warning',
})
