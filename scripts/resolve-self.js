// Inside the repository checkout, `import … from 'corral'` (a config file in
// examples/ or a test's) resolves to the TypeScript sources rather than to
// dist/, which a fresh clone has not built. Loaded by bin/corral.js in the
// checkout only; the processes corral starts (workers, a re-exec, a daemon)
// get it through their Node flags, as they get the master's.
import { registerHooks } from 'node:module'

const self = { corral: '../src/index.ts', 'corral/machines': '../src/machines.ts' }

registerHooks({
  resolve(specifier, context, nextResolve) {
    const source = self[specifier]
    return source ? { url: new URL(source, import.meta.url).href, shortCircuit: true } : nextResolve(specifier, context)
  },
})

const flag = `--import=${import.meta.url}`
if (!process.execArgv.includes(flag)) process.execArgv.push(flag)
