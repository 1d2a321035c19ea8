// Express 4 as every Express 4 tutorial writes it: a CommonJS module that
// calls `app.listen(3000)` itself and attaches a `ws` server to the server
// listen() returns. Under corral that listen() is served from corral's own
// listeners (issue 19, deliverable 1), so the app runs unchanged.
import type { Framework } from '../framework.ts'

const server = `const { createHash } = require('node:crypto')
const { pipeline, Readable } = require('node:stream')
const compression = require('compression')
const express = require('express')
const multer = require('multer')
const { WebSocketServer } = require('ws')

const app = express()
const upload = multer({ storage: multer.memoryStorage() })
const text = 'The quick brown fox jumps over the lazy dog, again and again.\\n'.repeat(1050)
const chunk = Buffer.alloc(64 * 1024, 'x')
const port = 3000

app.use(compression())

app.get('/', (req, res) => {
  res.type('text/plain').send('hello from express4\\n')
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

app.post('/upload', (req, res, next) => {
  const hash = createHash('sha256')
  let bytes = 0
  req.on('data', (part) => {
    bytes += part.length
    hash.update(part)
  })
  req.on('end', () => res.json({ bytes, sha256: hash.digest('hex') }))
  req.on('error', next)
})

app.post('/multipart', upload.any(), (req, res) => {
  const files = {}
  for (const file of req.files) files[file.fieldname] = file.size
  res.json({ fields: Object.assign({}, req.body), files })
})

app.get('/throw', () => {
  throw new Error('thrown on purpose by /throw')
})

app.get('/slow', (req, res) => {
  setTimeout(() => res.type('text/plain').send('slow done'), Number(req.query.ms || 1000))
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
    res.write('data: ' + process.pid + '\\n\\n')
    res.flush()
  }
  send()
  const timer = setInterval(send, 200)
  res.on('close', () => clearInterval(timer))
})

const server = app.listen(port, () => {
  console.log('Example app listening on port ' + port)
})

const wss = new WebSocketServer({ server, path: '/ws' })
wss.on('connection', (socket) => {
  socket.send(String(process.pid))
  socket.on('message', (data, isBinary) => socket.send(data, { binary: isBinary }))
})
`

const express4: Framework = {
  id: 'express4',
  title: 'Express 4',
  versionOf: 'express',
  dependencies: { express: '4.22.3', compression: '1.8.2', multer: '2.5.0', ws: '8.23.1' },
  // CommonJS, as Express 4 apps are (the scratch package is "type": "module", hence .cjs).
  files: { 'app.cjs': server },
  entry: 'app.cjs',
  listensItself: true,
  h2: false,
  notApplicable: {
    h2: 'Express gives each request node:http’s prototype, which breaks on node:http2’s compatibility objects (expressjs/express#3388)',
  },
}
export default express4
