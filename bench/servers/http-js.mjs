// Memory reference only: bench/servers/http.ts with the handler of
// bench/hello.ts copied in as plain JavaScript, so that Node never loads its
// TypeScript stripper (which costs RSS in every process that imports a .ts
// file). Not used for throughput.
import { createServer } from 'node:http'

const body = 'Hello, world!\n'
const headers = { 'content-type': 'text/plain', 'content-length': String(Buffer.byteLength(body)) }

function hello(_req, res) {
  res.writeHead(200, headers)
  res.end(body)
}

const port = Number(process.env.PORT ?? 8000)
const host = process.env.HOST ?? '127.0.0.1'
createServer(hello).listen(port, host)
