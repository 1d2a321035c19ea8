// `corral inspect`: the model playground (spec/inspector.md). No server, no
// processes: it prints the file:// URL of the inspector page, which runs the
// pure machines in the browser when opened as a file. A page that was not
// built (a checkout without npm run build) is said plainly.
import { existsSync } from 'node:fs'
import { fileURLToPath, pathToFileURL } from 'node:url'

const EXIT_USAGE = 2

/** Beside the bundle (dist/cli.js) when installed; dist/ of the checkout when run from the sources. */
const PAGES = [
  new URL('./inspector/index.html', import.meta.url),
  new URL('../../dist/inspector/index.html', import.meta.url),
]

export async function runInspect(argv: string[]): Promise<number> {
  if (argv.length > 0) {
    process.stderr.write(
      argv[0] === '--help' || argv[0] === '-h'
        ? 'corral inspect: prints the URL of the model playground, the master and worker charts running in your browser.\n'
        : `corral inspect takes no arguments (got ${JSON.stringify(argv.join(' '))})\n`,
    )
    return argv[0] === '--help' || argv[0] === '-h' ? 0 : EXIT_USAGE
  }
  const page = PAGES.map((u) => fileURLToPath(u)).find((p) => existsSync(p))
  if (page === undefined) {
    process.stderr.write('corral inspect: the page is not built; run npm run build\n')
    return 1
  }
  process.stdout.write(
    `The model playground (the pure machines in your browser; no server, no processes). Open:\n  ${pathToFileURL(page).href}\n`,
  )
  return 0
}
