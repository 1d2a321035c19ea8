// Koa 3 exported as it is (`export default app`: corral serves a Koa
// application through its callback()), with the Koa ecosystem's usual pieces:
// @koa/router, koa-compress, @koa/multer for multipart, and a `ws` server
// exported as `upgrade` for the WebSocket.
import type { Framework } from '../framework.ts'

const server = `import { createHash } from 'node:crypto'
import { PassThrough, Readable } from 'node:stream'
import multer from '@koa/multer'
import Router from '@koa/router'
import Koa from 'koa'
import compress from 'koa-compress'
import { WebSocketServer } from 'ws'

const app = new Koa()
const router = new Router()
const upload = multer({ storage: multer.memoryStorage() })
const text = 'The quick brown fox jumps over the lazy dog, again and again.\\n'.repeat(1050)
const chunk = Buffer.alloc(64 * 1024, 'x')

router.get('/', (ctx) => {
  ctx.type = 'text/plain'
  ctx.body = 'hello from koa\\n'
})

router.get('/big', (ctx) => {
  ctx.type = 'application/octet-stream'
  ctx.length = 160 * chunk.length
  ctx.body = Readable.from(
    (function* () {
      for (let i = 0; i < 160; i++) yield chunk
    })(),
  )
})

router.get('/text', (ctx) => {
  ctx.type = 'text/plain'
  ctx.body = text
})

router.post('/upload', async (ctx) => {
  const hash = createHash('sha256')
  let bytes = 0
  for await (const part of ctx.req) {
    bytes += part.length
    hash.update(part)
  }
  ctx.body = { bytes, sha256: hash.digest('hex') }
})

router.post('/multipart', upload.any(), (ctx) => {
  const files = {}
  for (const file of ctx.files ?? []) files[file.fieldname] = file.size
  ctx.body = { fields: { ...ctx.request.body }, files }
})

router.get('/throw', () => {
  throw new Error('thrown on purpose by /throw')
})

router.get('/slow', async (ctx) => {
  await new Promise((resolve) => setTimeout(resolve, Number(ctx.query.ms ?? 1000)))
  ctx.type = 'text/plain'
  ctx.body = 'slow done'
})

router.get('/pid', (ctx) => {
  ctx.type = 'text/plain'
  ctx.body = String(process.pid)
})

router.get('/whoami', (ctx) => {
  ctx.body = { ip: ctx.ip, protocol: ctx.protocol, pid: process.pid }
})

router.get('/sse', (ctx) => {
  ctx.type = 'text/event-stream'
  ctx.set('cache-control', 'no-cache')
  // A compressed stream would hold the events back in zlib's buffer.
  ctx.compress = false
  const stream = new PassThrough()
  const send = () => stream.write(\`data: \${process.pid}\\n\\n\`)
  send()
  const timer = setInterval(send, 200)
  ctx.req.on('close', () => {
    clearInterval(timer)
    stream.end()
  })
  ctx.body = stream
})

app.use(compress())
app.use(router.routes())
app.use(router.allowedMethods())

// corral hands every upgrade request to this server (and closes its clients
// with 1001 when the worker drains).
export const upgrade = new WebSocketServer({ noServer: true })
upgrade.on('connection', (socket) => {
  socket.send(String(process.pid))
  socket.on('message', (data, isBinary) => socket.send(data, { binary: isBinary }))
})

export default app
`

const koa: Framework = {
  id: 'koa',
  title: 'Koa',
  versionOf: 'koa',
  dependencies: {
    koa: '3.3.0',
    '@koa/router': '15.7.0',
    '@koa/multer': '4.0.0',
    multer: '2.5.0',
    'koa-compress': '5.2.2',
    ws: '8.23.1',
  },
  files: { 'app.js': server },
  entry: 'app.js',
  listensItself: false,
  h2: true,
}
export default koa
