// A plain node:http app that starts its own server, as Node's own docs write
// one: `http.createServer(handler).listen(process.env.PORT ?? 3000)`, with no
// framework: busboy for multipart, node:zlib for compression, a `ws` server
// attached to the http.Server for the WebSocket. Under corral that listen()
// is served from corral's listeners (issue 19, deliverable 1).
//
// The routes live in their own module, `routes.js`, which the GraphQL app
// (graphql.ts) serves beside its GraphQL endpoint as well.
import type { Framework } from '../framework.ts'

/** `routes.js`: `routes(id)` is a `(req, res)` handler for the contract's routes; it never throws. */
export const routesModule = `import { createHash } from 'node:crypto'
import { gzipSync } from 'node:zlib'
import busboy from 'busboy'

const text = 'The quick brown fox jumps over the lazy dog, again and again.\\n'.repeat(1050)
const gzippedText = gzipSync(text)
const chunk = Buffer.alloc(64 * 1024, 'x')

function send(res, status, type, body) {
  res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body) })
  res.end(body)
}
const json = (res, value) => send(res, 200, 'application/json', JSON.stringify(value))

function big(req, res) {
  res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': 160 * chunk.length })
  let left = 160
  const pump = () => {
    while (left > 0) {
      left -= 1
      if (!res.write(chunk)) return void res.once('drain', pump)
    }
    res.end()
  }
  res.on('close', () => { left = 0 })
  pump()
}

function compressible(req, res) {
  if (/\\bgzip\\b/.test(req.headers['accept-encoding'] ?? '')) {
    res.writeHead(200, { 'content-type': 'text/plain', 'content-encoding': 'gzip', vary: 'Accept-Encoding', 'content-length': gzippedText.length })
    res.end(gzippedText)
  } else {
    res.writeHead(200, { 'content-type': 'text/plain', vary: 'Accept-Encoding', 'content-length': Buffer.byteLength(text) })
    res.end(text)
  }
}

async function upload(req, res) {
  const hash = createHash('sha256')
  let bytes = 0
  for await (const part of req) {
    bytes += part.length
    hash.update(part)
  }
  json(res, { bytes, sha256: hash.digest('hex') })
}

function multipart(req, res) {
  return new Promise((resolve, reject) => {
    const fields = {}
    const files = {}
    const parser = busboy({ headers: req.headers })
    parser.on('field', (name, value) => { fields[name] = value })
    parser.on('file', (name, stream) => {
      files[name] = 0
      stream.on('data', (part) => { files[name] += part.length })
    })
    parser.on('close', () => resolve(json(res, { fields, files })))
    parser.on('error', reject)
    req.pipe(parser)
  })
}

function sse(req, res) {
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' })
  const tick = () => res.write(\`data: \${process.pid}\\n\\n\`)
  tick()
  const timer = setInterval(tick, 200)
  res.on('close', () => clearInterval(timer))
}

export function routes(id) {
  const table = {
    'GET /': (req, res) => send(res, 200, 'text/plain', \`hello from \${id}\\n\`),
    'GET /big': big,
    'GET /text': compressible,
    'POST /upload': upload,
    'POST /multipart': multipart,
    'GET /throw': () => {
      throw new Error('thrown on purpose by /throw')
    },
    'GET /slow': async (req, res, url) => {
      await new Promise((resolve) => setTimeout(resolve, Number(url.searchParams.get('ms') ?? 1000)))
      send(res, 200, 'text/plain', 'slow done')
    },
    'GET /pid': (req, res) => send(res, 200, 'text/plain', String(process.pid)),
    'GET /whoami': (req, res) =>
      json(res, { ip: req.socket.remoteAddress, protocol: req.socket.encrypted ? 'https' : 'http', pid: process.pid }),
    'GET /sse': sse,
  }
  return async (req, res) => {
    const url = new URL(req.url, 'http://localhost')
    const method = req.method === 'HEAD' ? 'GET' : req.method
    const route = table[\`\${method} \${url.pathname}\`]
    try {
      if (route) await route(req, res, url)
      else send(res, 404, 'text/plain', 'Not Found\\n')
    } catch (err) {
      console.error(err)
      if (!res.headersSent) send(res, 500, 'text/plain', 'Internal Server Error\\n')
      else res.destroy()
    }
  }
}
`

const server = `import { createServer } from 'node:http'
import { WebSocketServer } from 'ws'
import { routes } from './routes.js'

const server = createServer(routes('node-listen'))

const wss = new WebSocketServer({ server, path: '/ws' })
wss.on('connection', (socket) => {
  socket.send(String(process.pid))
  socket.on('message', (data, isBinary) => socket.send(data, { binary: isBinary }))
})

const port = process.env.PORT ?? 3000
server.listen(port, () => {
  console.log(\`listening on port \${port}\`)
})
`

const nodeListen: Framework = {
  id: 'node-listen',
  // The column's version is busboy's (node:http is Node's, named above the grid).
  title: 'node:http + busboy',
  versionOf: 'busboy',
  dependencies: { busboy: '1.6.0', ws: '8.23.1' },
  files: { 'routes.js': routesModule, 'server.js': server },
  entry: 'server.js',
  listensItself: true,
  h2: true,
}
export default nodeListen
