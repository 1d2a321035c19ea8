// Express 5 exported as it is (`export default app`), the shape corral's own
// docs give: corral's listeners serve it, and a `ws` server exported as
// `upgrade` takes the WebSocket. The middleware is the Express ecosystem's
// usual: compression, multer (memory storage) for multipart.
import type { Framework } from '../framework.ts'

const server = `import { createHash } from 'node:crypto'
import { pipeline, Readable } from 'node:stream'
import compression from 'compression'
import express from 'express'
import multer from 'multer'
import { WebSocketServer } from 'ws'

const app = express()
const upload = multer({ storage: multer.memoryStorage() })
const text = 'The quick brown fox jumps over the lazy dog, again and again.\\n'.repeat(1050)
const chunk = Buffer.alloc(64 * 1024, 'x')

app.use(compression())

app.get('/', (req, res) => {
  res.type('text/plain').send('hello from express5\\n')
})

app.get('/big', (req, res) => {
  res.set({ 'content-type': 'application/octet-stream', 'content-length': String(160 * chunk.length) })
  const chunks = (function* () {
    for (let i = 0; i < 160; i++) yield chunk
  })()
  pipeline(Readable.from(chunks), res, () => {})
})

app.get('/text', (req, res) => {
  res.type('text/plain').send(text)
})

app.post('/upload', async (req, res) => {
  const hash = createHash('sha256')
  let bytes = 0
  for await (const part of req) {
    bytes += part.length
    hash.update(part)
  }
  res.json({ bytes, sha256: hash.digest('hex') })
})

app.post('/multipart', upload.any(), (req, res) => {
  const files = {}
  for (const file of req.files ?? []) files[file.fieldname] = file.size
  res.json({ fields: { ...req.body }, files })
})

app.get('/throw', () => {
  throw new Error('thrown on purpose by /throw')
})

app.get('/slow', async (req, res) => {
  await new Promise((resolve) => setTimeout(resolve, Number(req.query.ms ?? 1000)))
  res.type('text/plain').send('slow done')
})

app.get('/pid', (req, res) => {
  res.type('text/plain').send(String(process.pid))
})

app.get('/whoami', (req, res) => {
  res.json({ ip: req.ip, protocol: req.protocol, pid: process.pid })
})

app.get('/sse', (req, res) => {
  res.set({ 'content-type': 'text/event-stream', 'cache-control': 'no-cache' })
  res.flushHeaders()
  // compression() holds small writes back until flushed (its docs' SSE advice).
  const send = () => {
    res.write(\`data: \${process.pid}\\n\\n\`)
    res.flush()
  }
  send()
  const timer = setInterval(send, 200)
  res.on('close', () => clearInterval(timer))
})

// corral hands every upgrade request to this server (and closes its clients
// with 1001 when the worker drains).
export const upgrade = new WebSocketServer({ noServer: true })
upgrade.on('connection', (socket) => {
  socket.send(String(process.pid))
  socket.on('message', (data, isBinary) => socket.send(data, { binary: isBinary }))
})

export default app
`

const express5: Framework = {
  id: 'express5',
  title: 'Express 5',
  versionOf: 'express',
  dependencies: { express: '5.3.0', compression: '1.8.2', multer: '2.5.0', ws: '8.23.1' },
  files: { 'app.js': server },
  entry: 'app.js',
  listensItself: false,
  h2: false,
  notApplicable: {
    h2: 'Express gives each request node:http’s prototype, which breaks on node:http2’s compatibility objects (expressjs/express#3388); corral refuses it over h2 with one line',
  },
}
export default express5
