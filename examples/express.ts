// Express 5, exported as it is: an Express app is a (req, res, next) handler.
//   npx corral examples/express.ts   →   curl http://127.0.0.1:8000/users/42
import express from 'express'

const app = express()
app.use(express.json())

app.get('/', (_req, res) => {
  res.type('text/plain').send(`Hello from Express in worker ${process.pid}\n`)
})

app.get('/users/:id', (req, res) => {
  res.json({ id: req.params.id })
})

app.post('/echo', (req, res) => {
  res.json({ received: req.body })
})

// Express 5 passes a rejected promise from an async handler to the error handler.
app.get('/fail', async () => {
  throw new Error('failed on purpose')
})

export default app
