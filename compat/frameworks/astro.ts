import type { Framework } from '../framework.ts'
import { buildWith } from './meta/build-script.ts'
import { webRoutesSource } from './meta/web-routes.ts'

// Astro with @astrojs/node in standalone mode: `astro build` writes
// `dist/server/entry.mjs`, which creates an http.Server and calls listen()
// itself on $HOST/$PORT. The routes are API endpoints (src/pages/<name>.js
// exporting GET/POST); the page is an .astro page rendered on demand.
const id = 'astro'

const dependencies = { astro: '7.4.8', '@astrojs/node': '11.1.6' }

const endpoint = (body: string): string => `import * as routes from '../lib/web-routes.js'\n\n${body}\n`

const sources: Record<string, string> = {
  // security.checkOrigin off: Astro answers 403 to a form-encoded POST
  // (multipart) whose Origin is not its own, and the grid's clients send none.
  'astro.config.mjs': `import node from '@astrojs/node'
import { defineConfig } from 'astro/config'

export default defineConfig({
  output: 'server',
  adapter: node({ mode: 'standalone' }),
  security: { checkOrigin: false },
})
`,
  'src/pages/index.astro': `<html lang="en">\n  <body>\n    <p>hello from ${id}</p>\n  </body>\n</html>\n`,
  'src/lib/web-routes.js': webRoutesSource,
  'src/pages/big.js': endpoint('export const GET = () => routes.big()'),
  'src/pages/text.js': endpoint(`export const GET = () => routes.text('${id}')`),
  'src/pages/upload.js': endpoint('export const POST = ({ request }) => routes.upload(request.body)'),
  'src/pages/multipart.js': endpoint('export const POST = ({ request }) => routes.multipart(request)'),
  'src/pages/throw.js': `export function GET() {\n  throw new Error('thrown by /throw')\n}\n`,
  'src/pages/slow.js': endpoint('export const GET = ({ url }) => routes.slow(url)'),
  'src/pages/pid.js': endpoint('export const GET = () => routes.pid()'),
  // Astro's node adapter takes clientAddress from the socket and the URL's
  // scheme from socket.encrypted (forwarded headers only for allowedDomains).
  'src/pages/whoami.js': endpoint(
    "export const GET = ({ clientAddress, url }) => routes.whoami(clientAddress, url.protocol === 'https:' ? 'https' : 'http')",
  ),
  'src/pages/sse.js': endpoint('export const GET = ({ request }) => routes.sse(request.signal)'),
}

const env = { ASTRO_TELEMETRY_DISABLED: '1' }
const entry = 'dist/server/entry.mjs'
const { files: buildFiles, build } = buildWith(
  { id, steps: [['node_modules/astro/bin/astro.mjs', 'build']], entry, env },
  { dependencies, files: sources },
)

const framework: Framework = {
  id,
  title: 'Astro',
  versionOf: 'astro',
  dependencies,
  files: { ...sources, ...buildFiles },
  build,
  entry,
  env: { ...env, HOST: '127.0.0.1' },
  listensItself: true,
  h2: false,
  notApplicable: {
    h2: "@astrojs/node does not run on Node's http2 compatibility API: it copies the request's headers, HTTP/2 pseudo-headers (':method') included, into a fetch Headers, which throws, so every request is a 500",
    ws: "Astro's node adapter has no server-side WebSocket: endpoints answer requests only, and its standalone server takes no upgrade",
    compression:
      "@astrojs/node's standalone server compresses nothing: static files and rendered responses are sent as they are (compression is left to a proxy in front)",
  },
}

export default framework
