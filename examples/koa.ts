// Koa 3: export app.callback(), the (req, res) handler Koa gives node:http.
// Exporting the Koa app itself works too: `corral examples/koa.ts:app`.
//   npx corral examples/koa.ts   →   curl -i http://127.0.0.1:8000/json
import Koa from 'koa'

export const app = new Koa()

// Middleware runs around everything after it, as with any Koa app.
app.use(async (ctx, next) => {
  const started = performance.now()
  await next()
  ctx.set('x-response-time', `${(performance.now() - started).toFixed(2)}ms`)
})

app.use(async (ctx) => {
  if (ctx.path === '/json') ctx.body = { framework: 'koa', pid: process.pid }
  else if (ctx.path === '/') ctx.body = `Hello from Koa in worker ${process.pid}\n`
  else ctx.throw(404, 'no such page')
})

export default app.callback()
