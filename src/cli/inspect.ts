// `corral inspect` (spec/inspector.md): the model playground, the inspector
// page running the pure machines in the browser. Without options it prints
// the page's file:// URL; with `--serve [HOST:]PORT` it serves the page over
// HTTP behind the same token, Host and Origin checks as a master's
// --inspector (src/master/page-server.ts), loopback unless --allow-remote, so
// a playground on a server is one `ssh -L` away. A page that was not built
// (a checkout without npm run build) is said plainly.
import { existsSync } from 'node:fs'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { findPage, PAGE_HEADERS, serveGuarded } from '../master/page-server.ts'

const EXIT_USAGE = 2

/** Beside the bundle (dist/cli.js) when installed; dist/ of the checkout when run from the sources. */
const PAGES = [
  new URL('./inspector/index.html', import.meta.url),
  new URL('../../dist/inspector/index.html', import.meta.url),
]

const HELP = `corral inspect [--serve [HOST:]PORT [--allow-remote]]
  The model playground: the master and worker charts running in your browser,
  with the guided tour of gunicorn's design. No server, no processes.
  Without options: prints the URL of the page (a file).
  --serve [HOST:]PORT  serve the page over HTTP instead (127.0.0.1 when no
                       HOST; port 0 picks one), behind a token in the URL it
                       prints; from another machine: ssh -L PORT:127.0.0.1:PORT
  --allow-remote       let --serve listen on an address that is not loopback
`

interface InspectOptions {
  serve?: string
  allowRemote: boolean
}

function parse(argv: readonly string[]): InspectOptions | string {
  const options: InspectOptions = { allowRemote: false }
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? ''
    const [name, inline] = arg.startsWith('--serve=') ? ['--serve', arg.slice(8)] : [arg, undefined]
    if (name === '--serve') {
      const value = inline ?? argv[++i]
      if (value === undefined || value === '') return '--serve needs [HOST:]PORT'
      options.serve = value
    } else if (name === '--allow-remote') options.allowRemote = true
    else return `unknown argument ${JSON.stringify(arg)}`
  }
  if (options.allowRemote && options.serve === undefined) return '--allow-remote goes with --serve'
  return options
}

export async function runInspect(argv: string[]): Promise<number> {
  if (argv[0] === '--help' || argv[0] === '-h') {
    process.stdout.write(HELP)
    return 0
  }
  const options = parse(argv)
  if (typeof options === 'string') {
    process.stderr.write(`corral inspect: ${options} (corral inspect --help)\n`)
    return EXIT_USAGE
  }
  if (options.serve !== undefined) return serve(options.serve, options.allowRemote)
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

/** Serves the playground until SIGINT or SIGTERM. */
async function serve(address: string, allowRemote: boolean): Promise<number> {
  let page: string
  try {
    // Marked, so the page runs the playground although it comes over HTTP with a token (app.ts).
    page = findPage('--serve').replace('<html lang="en">', '<html lang="en" data-serve="playground">')
  } catch (error) {
    process.stderr.write(`corral inspect: ${(error as Error).message}\n`)
    return 1
  }
  const served = await serveGuarded({
    flag: '--serve',
    allowRemoteFlag: '--allow-remote',
    address,
    allowRemote,
    handle(req, res, url) {
      const headers = { 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' }
      if (req.method === 'GET' && url.pathname === '/')
        res.writeHead(200, { ...headers, ...PAGE_HEADERS, 'content-type': 'text/html; charset=utf-8' }).end(page)
      else res.writeHead(404, headers).end('not found\n')
    },
  }).catch((error: Error & { code?: string }) => error)
  if (served instanceof Error) {
    process.stderr.write(`corral inspect: ${served.message}\n`)
    // A bad address is a usage error; one that cannot be listened on (in use, not ours) a run-time one.
    return served.code === undefined ? EXIT_USAGE : 1
  }
  const port = new URL(served.url).port
  process.stdout.write(
    `The model playground at: ${served.url}\n  (from another machine: ssh -L ${port}:127.0.0.1:${port} THIS-HOST, then open the URL there)\n`,
  )
  const signal = await new Promise<NodeJS.Signals>((stop) => {
    process.once('SIGINT', stop)
    process.once('SIGTERM', stop)
  })
  await new Promise<void>((done) => {
    served.server.close(() => done())
    served.server.closeAllConnections()
  })
  process.stderr.write(`corral inspect: ${signal}, stopped\n`)
  return 0
}
