// A plain node:http server around bench/hello.ts: one process, ESM.
// Used as-is for "bare", as the worker of the node:cluster server, and as the
// script PM2 runs in cluster mode (where its listen() goes through cluster).
//   PORT=8000 node bench/servers/http.ts
import { createServer } from 'node:http'
import hello from '../hello.ts'

const port = Number(process.env.PORT ?? 8000)
const host = process.env.HOST ?? '127.0.0.1'
createServer(hello).listen(port, host)
