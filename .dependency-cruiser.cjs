// Which way imports may go (spec/architecture.md). `npm run lint:imports`.
// Type-only imports count for cycles (a cycle of types is still a knot to
// untie), but not for what a process loads at run time.
/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'no-cycles',
      comment: 'No import cycles, type-only imports included.',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
    {
      name: 'machines-are-pure',
      comment: 'The statecharts are pure: they import nothing from the shell (src/) and nothing of Node.',
      severity: 'error',
      from: { path: '^machines/' },
      to: { pathNot: ['^machines/', '(^|/)node_modules/xstate/'] },
    },
    {
      name: 'worker-stays-light',
      comment:
        'A worker loads src/worker/ and the shared folders, never effect or the config layer, so its start-up stays light. With the rules below (no master/ or cli/ from there) this holds for everything a worker loads. Type-only imports are erased and do not count.',
      severity: 'error',
      from: { path: '^src/(worker|hooks|net|http|logging|process|protocol)/' },
      to: { path: ['^node_modules/effect/', '^src/config/'], dependencyTypesNot: ['type-only'] },
    },
    {
      name: 'shared-not-into-processes',
      comment:
        'Folders shared by both processes (net, http, logging, process, protocol, hooks/hooks.ts) do not reach into one process: master/, worker/ and cli/ import them, never the other way round.',
      severity: 'error',
      from: { path: '^src/(net|http|logging|process|protocol)/' },
      to: { path: '^src/(master|worker|cli|hooks)/', dependencyTypesNot: ['type-only'] },
    },
    {
      name: 'master-not-worker',
      comment: "The master never imports the worker's runtime, nor the worker the master's.",
      severity: 'error',
      from: { path: '^src/master/' },
      to: { path: '^src/worker/' },
    },
    {
      name: 'worker-not-master',
      severity: 'error',
      from: { path: '^src/worker/' },
      to: { path: '^src/(master|cli)/' },
    },
    {
      name: 'nothing-imports-cli',
      comment: 'The CLI is the top: it starts the master; nothing below imports it.',
      severity: 'error',
      from: { pathNot: '^(src/cli/|test/|bench/|scripts/)' },
      to: { path: '^src/cli/' },
    },
    {
      name: 'runtime-not-build-tools',
      comment:
        "What the package runs (src/, machines/) imports nothing from scripts/, the build and test tools: the path exploration (scripts/master-paths.ts) and xstate/graph stay out of it. The inspector page's script is the exception: it is bundled at build time into one file, and may share the machine walker (scripts/machine-walk.ts) with the spec's diagrams.",
      severity: 'error',
      from: { path: '^(src|machines)/', pathNot: '^src/inspector-ui/' },
      to: { path: '^scripts/' },
    },
    {
      name: 'page-gets-paths-as-data',
      comment:
        'The playground gets the generated paths as data written into the page at build time (scripts/build-inspector.ts), not by exploring the chart in the browser: the page does not import the exploration, nor xstate/graph.',
      severity: 'error',
      from: { path: '^src/inspector-ui/' },
      to: { path: ['^scripts/master-paths[.]ts$', '(^|/)node_modules/xstate/dist/xstate-graph'] },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['import', 'require', 'node', 'default'] },
    reporterOptions: { text: { highlightFocused: true } },
  },
}
