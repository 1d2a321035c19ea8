// Hono 4 in TypeScript, exported as it is (`export default app`: corral
// serves its fetch() through @hono/node-server's adapter; Node strips the
// types), with Hono's own middleware: compress, streamSSE, parseBody for
// multipart, getConnInfo for the client address; a `ws` server exported as
// `upgrade` takes the WebSocket (Hono's Node WebSocket helper needs the
// server object, which an exported app does not own).
import type { Framework } from '../framework.ts'

const server = `import { createHash } from 'node:crypto'
import { getConnInfo } from '@hono/node-server/conninfo'
import { Hono } from 'hono'
import { compress } from 'hono/compress'
import { streamSSE } from 'hono/streaming'
import { WebSocketServer } from 'ws'

const app = new Hono()
const text = 'The quick brown fox jumps over the lazy dog, again and again.\\n'.repeat(1050)
const chunk = new Uint8Array(64 * 1024).fill(0x78)

app.use(compress())

app.get('/', (c) => c.text('hello from hono\\n'))

app.get('/big', (c) => {
  let left = 160
  const body = new ReadableStream<Uint8Array>({
    pull(controller) {
      controller.enqueue(chunk)
      left -= 1
      if (left === 0) controller.close()
    },
  })
  return c.body(body, 200, {
    'content-type': 'application/octet-stream',
    'content-length': String(160 * chunk.length),
  })
})

app.get('/text', (c) => c.text(text))

app.post('/upload', async (c) => {
  const hash = createHash('sha256')
  let bytes = 0
  for await (const part of c.req.raw.body ?? []) {
    bytes += part.length
    hash.update(part)
  }
  return c.json({ bytes, sha256: hash.digest('hex') })
})

app.post('/multipart', async (c) => {
  const form = await c.req.parseBody()
  const fields: Record<string, string> = {}
  const files: Record<string, number> = {}
  for (const [name, value] of Object.entries(form)) {
    if (typeof value === 'string') fields[name] = value
    else if (value instanceof File) files[name] = value.size
  }
  return c.json({ fields, files })
})

app.get('/throw', () => {
  throw new Error('thrown on purpose by /throw')
})

app.get('/slow', async (c) => {
  await new Promise((resolve) => setTimeout(resolve, Number(c.req.query('ms') ?? 1000)))
  return c.text('slow done')
})

app.get('/pid', (c) => c.text(String(process.pid)))

app.get('/whoami', (c) => {
  const protocol = new URL(c.req.url).protocol.slice(0, -1)
  return c.json({ ip: getConnInfo(c).remote.address, protocol, pid: process.pid })
})

app.get('/sse', (c) =>
  streamSSE(c, async (stream) => {
    let open = true
    stream.onAbort(() => {
      open = false
    })
    while (open) {
      await stream.writeSSE({ data: String(process.pid) })
      await stream.sleep(200)
    }
  }),
)

// corral hands every upgrade request to this server (and closes its clients
// with 1001 when the worker drains).
export const upgrade = new WebSocketServer({ noServer: true })
upgrade.on('connection', (socket) => {
  socket.send(String(process.pid))
  socket.on('message', (data, isBinary) => socket.send(data, { binary: isBinary }))
})

export default app
`

const hono: Framework = {
  id: 'hono',
  title: 'Hono',
  versionOf: 'hono',
  dependencies: { hono: '4.13.23', '@hono/node-server': '2.1.11', ws: '8.23.1' },
  devDependencies: { '@types/node': '24.19.4', '@types/ws': '8.18.2' },
  files: { 'app.ts': server },
  entry: 'app.ts',
  listensItself: false,
  h2: true,
}
export default hono
