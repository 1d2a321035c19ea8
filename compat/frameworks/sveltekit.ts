import type { Framework } from '../framework.ts'
import { buildWith } from './meta/build-script.ts'
import { webRoutesSource } from './meta/web-routes.ts'

// SvelteKit 3 with adapter-node: `vite build` writes `build/index.js`, which
// creates an http.Server and calls listen() itself on $HOST/$PORT (or takes a
// systemd socket, LISTEN_FDS). The routes are `+server.js` endpoints; the
// page is a Svelte component rendered on the server. SvelteKit 3 reads its
// config from the Vite plugin's options (svelte.config.js is gone).
const id = 'sveltekit'

const devDependencies = {
  '@sveltejs/kit': '3.4.1',
  '@sveltejs/adapter-node': '6.0.2',
  '@sveltejs/vite-plugin-svelte': '7.3.3',
  svelte: '5.60.1',
  vite: '8.4.1',
}

const endpoint = (body: string): string => `import * as routes from '../../lib/web-routes.js'\n\n${body}\n`

const sources: Record<string, string> = {
  // csrf.trustedOrigins ['*']: SvelteKit answers 403 to any form-encoded POST
  // (multipart, or a body without a content type) whose Origin is not its
  // own, and the grid's clients send no Origin.
  'vite.config.js': `import adapter from '@sveltejs/adapter-node'
import { sveltekit } from '@sveltejs/kit/vite'
import { defineConfig } from 'vite'

export default defineConfig({
  plugins: [sveltekit({ adapter: adapter(), csrf: { trustedOrigins: ['*'] } })],
})
`,
  'src/app.html': `<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8" />
    %sveltekit.head%
  </head>
  <body>
    <div>%sveltekit.body%</div>
  </body>
</html>
`,
  'src/routes/+page.svelte': `<p>hello from ${id}</p>\n`,
  'src/lib/web-routes.js': webRoutesSource,
  'src/routes/big/+server.js': endpoint('export const GET = () => routes.big()'),
  'src/routes/text/+server.js': endpoint(`export const GET = () => routes.text('${id}')`),
  'src/routes/upload/+server.js': endpoint('export const POST = ({ request }) => routes.upload(request.body)'),
  'src/routes/multipart/+server.js': endpoint('export const POST = ({ request }) => routes.multipart(request)'),
  'src/routes/throw/+server.js': `export function GET() {\n  throw new Error('thrown by /throw')\n}\n`,
  'src/routes/slow/+server.js': endpoint('export const GET = ({ url }) => routes.slow(url)'),
  'src/routes/pid/+server.js': endpoint('export const GET = () => routes.pid()'),
  // adapter-node builds request.url with https unless told a protocol header
  // or ORIGIN, so the scheme comes from the socket it hands over as platform.req.
  'src/routes/whoami/+server.js': endpoint(`export const GET = ({ getClientAddress, platform }) =>
  routes.whoami(getClientAddress(), platform?.req?.socket?.encrypted ? 'https' : 'http')`),
  'src/routes/sse/+server.js': endpoint('export const GET = ({ request }) => routes.sse(request.signal)'),
}

const entry = 'build/index.js'
const { files: buildFiles, build } = buildWith(
  { id, steps: [['node_modules/vite/bin/vite.js', 'build']], entry, env: {} },
  { dependencies: {}, devDependencies, files: sources },
)

const framework: Framework = {
  id,
  title: 'SvelteKit',
  versionOf: '@sveltejs/kit',
  dependencies: {},
  devDependencies,
  files: { ...sources, ...buildFiles },
  build,
  entry,
  // adapter-node refuses bodies over 512 KiB by default (BODY_SIZE_LIMIT); the
  // grid uploads 10 MiB.
  env: { HOST: '127.0.0.1', BODY_SIZE_LIMIT: 'Infinity' },
  listensItself: true,
  // adapter-node's handler reads the Node request and writes the response
  // through the calls Node's http2 compatibility API has (checked with curl --http2).
  h2: true,
  notApplicable: {
    ws: "SvelteKit has no server-side WebSocket: endpoints answer requests only, and adapter-node's server takes no upgrade",
    compression:
      "adapter-node's server compresses nothing at run time: it serves pre-compressed static assets (precompress) and sends endpoint and page responses as they are",
  },
}

export default framework
