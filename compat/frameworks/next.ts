import type { Framework } from '../framework.ts'
import { buildWith } from './meta/build-script.ts'
import { webRoutesSource } from './meta/web-routes.ts'

// Next.js with `output: 'standalone'`: `next build` writes a self-contained
// `.next/standalone/server.js` that calls listen() itself on $PORT/$HOSTNAME.
// The routes are App Router route handlers (app/<route>/route.js), the page
// is a server component; all of them run in Next's own Node server, which
// gzips responses itself (`compress`, on by default): /text is compressed
// when asked, /big (octet-stream) and /sse (no-transform) are not.
const id = 'next'

const dependencies = { next: '16.5.0', react: '19.3.1', 'react-dom': '19.3.1' }

// One route handler per contract route; `force-dynamic` so that no GET is
// prerendered at build time (each must run per request).
const route = (body: string): string =>
  `import * as routes from '../../lib/web-routes.js'\n\nexport const dynamic = 'force-dynamic'\n\n${body}\n`

const sources: Record<string, string> = {
  'next.config.mjs': `import { fileURLToPath } from 'node:url'

// The scratch app sits inside corral's checkout, whose lockfile Next would
// otherwise take for the workspace root (and nest server.js under it).
const root = fileURLToPath(new URL('.', import.meta.url))

export default {
  output: 'standalone',
  outputFileTracingRoot: root,
  turbopack: { root },
}
`,
  'app/layout.js': `export default function RootLayout({ children }) {
  return (
    <html lang="en">
      <body>{children}</body>
    </html>
  )
}
`,
  'app/page.js': `export default function Page() {
  return <p>hello from ${id}</p>
}
`,
  'lib/web-routes.js': webRoutesSource,
  'app/big/route.js': route('export const GET = () => routes.big()'),
  'app/text/route.js': route(`export const GET = () => routes.text('${id}')`),
  'app/upload/route.js': route('export const POST = (request) => routes.upload(request.body)'),
  'app/multipart/route.js': route('export const POST = (request) => routes.multipart(request)'),
  'app/throw/route.js': route(`export function GET() {\n  throw new Error('thrown by /throw')\n}`),
  'app/slow/route.js': route('export const GET = (request) => routes.slow(request.url)'),
  'app/pid/route.js': route('export const GET = () => routes.pid()'),
  // Next's server fills x-forwarded-for (from the socket) and x-forwarded-proto
  // (from socket.encrypted) when the request has none; a proxy's own
  // X-Forwarded-For ends with the address it saw, so the last entry is the client.
  'app/whoami/route.js': route(`export function GET(request) {
  const forwardedFor = request.headers.get('x-forwarded-for') ?? ''
  const ip = forwardedFor.split(',').at(-1).trim()
  const protocol = request.headers.get('x-forwarded-proto') === 'https' ? 'https' : 'http'
  return routes.whoami(ip, protocol)
}`),
  'app/sse/route.js': route('export const GET = (request) => routes.sse(request.signal)'),
}

const env = { NEXT_TELEMETRY_DISABLED: '1' }
const entry = '.next/standalone/server.js'
const { files: buildFiles, build } = buildWith(
  {
    id,
    steps: [['node_modules/next/dist/bin/next', 'build']],
    // Standalone output leaves the client assets out: Next's docs copy them in.
    copies: [['.next/static', '.next/standalone/.next/static']],
    entry,
    env,
  },
  { dependencies, files: sources },
)

const framework: Framework = {
  id,
  title: 'Next.js',
  versionOf: 'next',
  dependencies,
  files: { ...sources, ...buildFiles },
  build,
  entry,
  // HOSTNAME is where server.js listens; containers often export the machine's
  // name in it, so it is set explicitly.
  env: { ...env, HOSTNAME: '127.0.0.1' },
  listensItself: true,
  h2: false,
  notApplicable: {
    h2: "Next's server does not run on Node's http2 compatibility API: its compression middleware calls res._implicitHeader(), which Http2ServerResponse lacks, so every response throws and the request hangs",
    ws: "Next.js's production server (standalone server.js) has no WebSocket support: route handlers cannot take an upgrade, and its docs point to a custom server, which standalone output replaces",
  },
}

export default framework
