// Importing the user's modules (the app, the config file) as their authors
// meant them. In a "type": "commonjs" project (npm init's default) Node takes
// every .ts file for CommonJS, so `import`/`export`, which TypeScript users
// write in CommonJS projects too (tsc turns it into require), fails with
// "Cannot use import statement outside a module". Node's own syntax
// detection would load such a file as an ES module, but it runs only in a
// package with no "type" at all; a module hook applies the same rule to .ts
// files in a CommonJS package. It is registered the first time a .ts file is
// imported (not before: other apps pay nothing) and runs in the process,
// with Node's type stripper, no compiler of ours.
import { readFileSync } from 'node:fs'
import { basename, relative, sep } from 'node:path'
import module from 'node:module'
import { pathToFileURL } from 'node:url'

let hooked = false

/** `import()` of a file the user wrote; `query` makes a fresh copy (a HUP's re-read of the config file). */
export function importUserModule(file: string, query = ''): Promise<unknown> {
  if (!hooked && file.endsWith('.ts')) {
    hooked = true
    // Node 22.15 or later; before that, Node strips no types without a flag anyway.
    module.registerHooks?.({ load: loadTypeScriptWithModuleSyntaxAsModule })
  }
  return import(pathToFileURL(file).href + query)
}

const loadTypeScriptWithModuleSyntaxAsModule: module.LoadHookSync = (url, context, nextLoad) => {
  const loaded = nextLoad(url, context)
  if (loaded.format !== 'commonjs-typescript' || !new URL(url).pathname.endsWith('.ts')) return loaded
  const code = moduleCode(String(loaded.source ?? readFileSync(new URL(url))))
  // Stripped already (blanks where the types were, so lines and columns hold): Node need not strip it again.
  return code === undefined ? loaded : { ...loaded, format: 'module', source: code }
}

/**
 * The TypeScript source with its types stripped when it fails to compile as
 * CommonJS for the reasons Node's own detection takes for ES module syntax
 * (import or export statements, import.meta, a top-level await); undefined
 * when it compiles, or does not strip or compile for any other reason: it
 * stays CommonJS, and Node reports its error as it would.
 */
function moduleCode(source: string): string | undefined {
  let code: string
  // The stripper is still marked experimental: its warning would be a line in every worker's log.
  const { emitWarning } = process
  process.emitWarning = () => {}
  try {
    code = module.stripTypeScriptTypes(source)
  } catch {
    return undefined
  } finally {
    process.emitWarning = emitWarning
  }
  try {
    // Loaded here, on the hook's path only: a worker serving JavaScript need not load node:vm.
    process
      .getBuiltinModule('node:vm')
      .compileFunction(code, ['exports', 'require', 'module', '__filename', '__dirname'])
    return undefined
  } catch (err) {
    const moduleSyntax = err instanceof SyntaxError && MODULE_SYNTAX_ERRORS.some((m) => err.message.includes(m))
    return moduleSyntax ? code : undefined
  }
}

const MODULE_SYNTAX_ERRORS = [
  'Cannot use import statement outside a module',
  "Unexpected token 'export'",
  "Cannot use 'import.meta' outside a module",
  'await is only valid in async functions and the top level bodies of modules',
]

/**
 * Why Node cannot run this TypeScript file, and what to do instead, or
 * undefined when it can (or the file is not TypeScript): a Node older than
 * 22.18 strips no types unless told to, and none strips them under
 * node_modules (ERR_UNSUPPORTED_NODE_MODULES_TYPE_STRIPPING), so an example
 * shipped in corral's package cannot be served where it is.
 */
export function typeScriptProblem(file: string, cwd: string): string | undefined {
  if (!/\.[cm]?ts$/.test(file)) return undefined
  if (!process.features.typescript)
    return `Node ${process.version} runs no TypeScript; Node 22.18 or later does (or NODE_OPTIONS=--experimental-strip-types), else write it in JavaScript`
  if (!file.split(sep).includes('node_modules')) return undefined
  const shown = relative(cwd, file)
  return `Node runs no TypeScript inside node_modules; copy it into your project and serve the copy: cp ${shown} . && npx corral ${basename(file)}`
}
