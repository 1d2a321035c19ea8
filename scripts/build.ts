// Builds dist/, what the published package runs and what bin/corral.js runs
// inside the repository when it is newer than every source:
//   cli.js              the master, one ES module
//   worker.js           the worker: a loader, then worker-main.cjs, one
//                       CommonJS module (see below)
//   index.js/.cjs       `corral`: defineConfig, for import and require
//   machines.js/.cjs    `corral/machines`: the pure statecharts
// Bundling saves every process the type stripper (~20 MB of WebAssembly) and
// the cost of loading effect as hundreds of modules. effect and xstate are
// bundled into the master and the worker (devDependencies; xstate as one
// module saves a worker about 8 ms of CPU at start); @hono/node-server stays
// external, the one dependency, loaded for fetch apps only. corral/machines
// imports xstate: the user's own, an optional peer dependency, so that their
// createActor and our machines share one copy. Types: scripts/build-types.ts.
import { build, type BuildOptions, type Plugin } from 'esbuild'
import { mkdirSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { isBuiltin } from 'node:module'
import { fileURLToPath } from 'node:url'
import { buildInspector } from './build-inspector.ts'

const root = fileURLToPath(new URL('..', import.meta.url))

// Built aside, then renamed into dist/ file by file (a rename is atomic):
// tests start masters from dist/ while another test packs, and a master must
// never read a half-written bundle, nor find cli.js before worker.js.
const staging = `dist/.staging-${process.pid}`
rmSync(`${root}${staging}`, { recursive: true, force: true })
mkdirSync(`${root}${staging}`, { recursive: true })

const common: BuildOptions = {
  absWorkingDir: root,
  outdir: staging,
  bundle: true,
  platform: 'node',
  target: 'node22.12',
  external: ['@hono/node-server'],
  logLevel: 'warning',
}
const library: BuildOptions = {
  ...common,
  entryPoints: { index: 'src/index.ts', machines: 'src/machines.ts' },
  external: ['xstate'],
}

// The master's bundle stays an ES module (it is imported by bin/corral.js,
// beside the sources), but takes Node's built-ins through
// process.getBuiltinModule, as CommonJS modules inside the bundle: an ES
// module's import of a built-in builds a namespace that reads every export,
// firing lazy getters (node:http's WebSocket loads undici, node:fs's promises
// loads readline). A bundled module's imports then read each export when used.
const builtinsByGetter: Plugin = {
  name: 'builtins-by-getter',
  setup(b) {
    b.onResolve({ filter: /^(node:)?[a-z_/0-9]+$/ }, (args) =>
      isBuiltin(args.path) ? { path: args.path.replace(/^(node:)?/, 'node:'), namespace: 'builtin' } : undefined,
    )
    b.onLoad({ filter: /.*/, namespace: 'builtin' }, (args) => ({
      contents: `module.exports = process.getBuiltinModule(${JSON.stringify(args.path)})`,
      loader: 'js',
    }))
  },
}

// The worker is CommonJS: an ES module's import of a built-in builds a
// namespace that reads every export, firing lazy getters (node:fs's promises,
// node:http's WebSocket, which loads undici); require() reads none. The worker
// still imports the app with import(). Nothing of effect may reach it: the
// build fails if anything does (its imports are checked below).
const workerBuild = build({
  ...common,
  entryPoints: { 'worker-main': 'src/worker/main.ts' },
  format: 'cjs',
  outExtension: { '.js': '.cjs' },
  define: { 'import.meta.url': '__corralModuleUrl' },
  banner: { js: "const __corralModuleUrl = require('node:url').pathToFileURL(__filename).href;" },
  metafile: true,
})

const [worker] = await Promise.all([
  workerBuild,
  build({
    ...common,
    entryPoints: { cli: 'src/cli/main.ts', 'dirty-worker': 'src/dirty/worker.ts' },
    format: 'esm',
    plugins: [builtinsByGetter],
    // Bundled CommonJS may call require for Node built-ins.
    banner: {
      js: "import { createRequire as __corralRequire } from 'node:module'; const require = __corralRequire(import.meta.url);",
    },
  }),
  build({ ...library, format: 'esm' }),
  build({
    ...library,
    format: 'cjs',
    outExtension: { '.js': '.cjs' },
  }),
  // dist/inspector/index.html: the --inspector page and `corral inspect` (scripts/build-inspector.ts).
  buildInspector(),
])

const workerEffect = Object.keys(worker.metafile.inputs).filter((input) => input.includes('node_modules/effect/'))
if (workerEffect.length > 0) throw new Error(`effect must stay out of the worker, but it bundles ${workerEffect[0]}`)

// What the master spawns: it turns on Node's module compile cache first, so
// that every worker after the first reads the bundle, xstate and the app
// compiled already (Node checks each source's hash; bin/corral.js does the
// same for the master). A worker that cannot write the cache runs as before.
// No import statement of its own, for the reason the bundle is CommonJS.
writeFileSync(
  `${root}${staging}/worker.js`,
  "const { createRequire, enableCompileCache } = process.getBuiltinModule('node:module')\nenableCompileCache?.()\ncreateRequire(import.meta.url)('./worker-main.cjs')\n",
)
// worker.js last: bin/corral.js takes the bundle once worker.js is newer than every source.
const built = readdirSync(`${root}${staging}`).sort((a, b) => Number(a === 'worker.js') - Number(b === 'worker.js'))
for (const name of built) renameSync(`${root}${staging}/${name}`, `${root}dist/${name}`)
rmSync(`${root}${staging}`, { recursive: true, force: true })
// The worker's ES module bundle before it became CommonJS: never to be packed stale.
rmSync(`${root}dist/worker-main.js`, { force: true })
