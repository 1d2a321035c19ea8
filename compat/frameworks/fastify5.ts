// Fastify 5 as its docs' getting-started page writes it: the app calls
// `fastify.listen({ port })` itself (the shape Fastify users have; corral
// also serves an exported instance, but hardly anyone writes that), with
// Fastify's own plugins: @fastify/compress, @fastify/multipart,
// @fastify/websocket. Under corral that listen() is served from corral's
// listeners (issue 19, deliverable 1); listen() without a host binds
// `localhost`, which Fastify turns into one server per address it resolves to.
import type { Framework } from '../framework.ts'

const server = `import { createHash } from 'node:crypto'
import { Readable } from 'node:stream'
import compress from '@fastify/compress'
import multipart from '@fastify/multipart'
import websocket from '@fastify/websocket'
import Fastify from 'fastify'

const fastify = Fastify({ logger: { level: 'warn' } })
const text = 'The quick brown fox jumps over the lazy dog, again and again.\\n'.repeat(1050)
const chunk = Buffer.alloc(64 * 1024, 'x')

await fastify.register(compress)
await fastify.register(multipart)
await fastify.register(websocket)

// Any body that is not multipart is handed over as it is, unparsed: /upload
// reads it as a stream, whatever its size (bodyLimit is for parsed bodies).
fastify.addContentTypeParser('*', (request, payload, done) => done(null))

fastify.get('/', async (request, reply) => {
  reply.type('text/plain')
  return 'hello from fastify5\\n'
})

fastify.get('/big', (request, reply) => {
  reply.type('application/octet-stream').header('content-length', 160 * chunk.length)
  return reply.send(
    Readable.from(
      (function* () {
        for (let i = 0; i < 160; i++) yield chunk
      })(),
    ),
  )
})

fastify.get('/text', async (request, reply) => {
  reply.type('text/plain')
  return text
})

fastify.post('/upload', async (request) => {
  const hash = createHash('sha256')
  let bytes = 0
  for await (const part of request.raw) {
    bytes += part.length
    hash.update(part)
  }
  return { bytes, sha256: hash.digest('hex') }
})

fastify.post('/multipart', async (request) => {
  const fields = {}
  const files = {}
  for await (const part of request.parts()) {
    if (part.type === 'file') {
      files[part.fieldname] = 0
      for await (const piece of part.file) files[part.fieldname] += piece.length
    } else {
      fields[part.fieldname] = part.value
    }
  }
  return { fields, files }
})

fastify.get('/throw', async () => {
  throw new Error('thrown on purpose by /throw')
})

fastify.get('/slow', async (request, reply) => {
  await new Promise((resolve) => setTimeout(resolve, Number(request.query.ms ?? 1000)))
  reply.type('text/plain')
  return 'slow done'
})

fastify.get('/pid', async (request, reply) => {
  reply.type('text/plain')
  return String(process.pid)
})

fastify.get('/whoami', async (request) => ({ ip: request.ip, protocol: request.protocol, pid: process.pid }))

// An event stream is written to the raw response (reply.hijack()), as
// Fastify's docs do for anything Fastify should not finish or compress.
fastify.get('/sse', (request, reply) => {
  reply.hijack()
  reply.raw.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' })
  const send = () => reply.raw.write(\`data: \${process.pid}\\n\\n\`)
  send()
  const timer = setInterval(send, 200)
  request.raw.on('close', () => clearInterval(timer))
})

fastify.get('/ws', { websocket: true }, (socket) => {
  socket.send(String(process.pid))
  socket.on('message', (data, isBinary) => socket.send(data, { binary: isBinary }))
})

try {
  await fastify.listen({ port: Number(process.env.PORT ?? 3000) })
} catch (err) {
  fastify.log.error(err)
  process.exit(1)
}
`

const fastify5: Framework = {
  id: 'fastify5',
  title: 'Fastify 5',
  versionOf: 'fastify',
  dependencies: {
    fastify: '5.12.8',
    '@fastify/compress': '9.2.0',
    '@fastify/multipart': '10.1.9',
    '@fastify/websocket': '11.3.7',
  },
  files: { 'server.js': server },
  entry: 'server.js',
  listensItself: true,
  h2: true,
}
export default fastify5
