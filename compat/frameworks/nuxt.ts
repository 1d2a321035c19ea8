import type { Framework } from '../framework.ts'
import { buildWith } from './meta/build-script.ts'
import { webRoutesSource } from './meta/web-routes.ts'

// Nuxt 4 built with Nitro's node-server preset: `nuxt build` writes
// `.output/server/index.mjs`, which calls listen() itself on $PORT/$HOST
// (NITRO_PORT/NITRO_HOST). The routes are Nitro server routes
// (server/routes/<name>.<method>.js) using h3's helpers, which Nuxt imports
// automatically; the page is a Vue page rendered on the server.
const id = 'nuxt'

// vite is pinned to the release Nuxt 4.6.4 was published with: under vite 8.4 (rolldown's
// stricter externals) its server build fails with INVALID_EXTERNAL_ID on unctx.
const dependencies = { nuxt: '4.6.4', vue: '3.5.47', 'vue-router': '5.6.1', vite: '8.3.5' }

const handler = (body: string): string => `import * as routes from '../web-routes.js'\n\nexport default ${body}\n`

const sources: Record<string, string> = {
  'nuxt.config.ts': `export default defineNuxtConfig({
  compatibilityDate: '2026-01-01',
  telemetry: false,
  devtools: { enabled: false },
  nitro: {
    preset: 'node-server',
    // Nitro's WebSocket support (crossws) is experimental and off by default.
    experimental: { websocket: true },
  },
})
`,
  'app/app.vue': '<template>\n  <NuxtPage />\n</template>\n',
  'app/pages/index.vue': `<template>\n  <p>hello from ${id}</p>\n</template>\n`,
  'server/web-routes.js': webRoutesSource,
  'server/routes/big.get.js': handler('defineEventHandler(() => routes.big())'),
  'server/routes/text.get.js': handler(`defineEventHandler(() => routes.text('${id}'))`),
  // h3's own body readers, which read the Node request as it is: toWebRequest
  // copies HTTP/2's pseudo-headers (':method') into a Headers, which throws.
  'server/routes/upload.post.js': handler('defineEventHandler((event) => routes.upload(getRequestWebStream(event)))'),
  'server/routes/multipart.post.js': `export default defineEventHandler(async (event) => {
  const fields = {}
  const files = {}
  for (const part of (await readMultipartFormData(event)) ?? []) {
    if (part.filename === undefined) fields[part.name] = part.data.toString()
    else files[part.name] = part.data.length
  }
  return { fields, files }
})
`,
  'server/routes/throw.get.js': `export default defineEventHandler(() => {\n  throw new Error('thrown by /throw')\n})\n`,
  'server/routes/slow.get.js': handler('defineEventHandler((event) => routes.slow(getRequestURL(event)))'),
  'server/routes/pid.get.js': handler('defineEventHandler(() => routes.pid())'),
  // The socket's own address and TLS state: what a proxy in front has
  // forwarded is corral's to decide (--forwarded-allow-ips), not the app's.
  'server/routes/whoami.get.js': handler(`defineEventHandler((event) =>
  routes.whoami(
    getRequestIP(event, { xForwardedFor: false }),
    getRequestProtocol(event, { xForwardedProto: false }),
  ),
)`),
  // h3's own event stream: 'data: <pid>' at once, then every 200 ms.
  'server/routes/sse.get.js': `export default defineEventHandler((event) => {
  const stream = createEventStream(event)
  const tick = () => stream.push(String(process.pid))
  const timer = setInterval(tick, 200)
  stream.onClosed(async () => {
    clearInterval(timer)
    await stream.close()
  })
  tick()
  return stream.send()
})
`,
  'server/routes/ws.js': `export default defineWebSocketHandler({
  open(peer) {
    peer.send(String(process.pid))
  },
  message(peer, message) {
    peer.send(message.text())
  },
})
`,
}

const env = { NUXT_TELEMETRY_DISABLED: '1' }
const entry = '.output/server/index.mjs'
const { files: buildFiles, build } = buildWith(
  { id, steps: [['node_modules/nuxt/bin/nuxt.mjs', 'build']], entry, env },
  { dependencies, files: sources },
)

const framework: Framework = {
  id,
  title: 'Nuxt',
  versionOf: 'nuxt',
  dependencies,
  files: { ...sources, ...buildFiles },
  build,
  entry,
  // NITRO_SHUTDOWN_DISABLED: Nitro's own SIGTERM handler waits for the
  // connections it saw through its server's 'connection' event, then exits
  // the process. Under corral it sees none (corral's listeners accept them),
  // so it exits the worker at once, cutting in-flight requests, SSE streams
  // and WebSockets on every HUP and TERM (4 cases of the grid). The switch is
  // Nitro's own, for a process manager that handles shutdown: corral drains.
  env: { ...env, NITRO_HOST: '127.0.0.1', NITRO_SHUTDOWN_DISABLED: '1' },
  listensItself: true,
  h2: true,
  notApplicable: {
    compression:
      "Nitro's node server sends dynamic responses uncompressed (it can pre-compress public assets at build time, compressPublicAssets; nothing compresses a route's response)",
  },
}

export default framework
