// Hono 4: `export default app`. A Hono app has fetch(Request) → Response,
// which corral serves through @hono/node-server's adapter.
//   npx corral examples/hono.ts   →   curl http://127.0.0.1:8000/json/ada
import { Hono } from 'hono'

const app = new Hono()

app.get('/', (c) => c.text(`Hello from Hono in worker ${process.pid}\n`))

app.get('/json/:name', (c) => c.json({ name: c.req.param('name'), pid: process.pid }))

app.post('/echo', async (c) => c.json({ received: await c.req.json() }))

export default app
