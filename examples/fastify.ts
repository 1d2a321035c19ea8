// Fastify 5, exported as it is. corral recognises a Fastify instance, awaits
// app.ready() (which runs the plugins registered below) and serves
// app.routing, the (req, res) function Fastify's own server would call.
//   npx corral examples/fastify.ts   →   curl http://127.0.0.1:8000/
import Fastify from 'fastify'

const app = Fastify()

app.get('/', async () => ({ hello: 'fastify', pid: process.pid }))

app.post('/echo', async (request) => ({ received: request.body }))

// Plugins load asynchronously: this route exists only once ready() has run.
app.register(
  async (scope) => {
    scope.get('/hello/:name', async (request) => `Hello, ${(request.params as { name: string }).name}\n`)
  },
  { prefix: '/plugin' },
)

export default app
