// A CommonJS app: module.exports is the app (here Express 5).
//   npx corral examples/express.cjs
const express = require('express')

const app = express()

app.get('/', (_req, res) => {
  res.type('text/plain').send(`Hello from CommonJS Express in worker ${process.pid}\n`)
})

module.exports = app
