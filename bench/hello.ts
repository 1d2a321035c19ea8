// The one handler every server in the benchmark runs: bare node:http,
// corral, node:cluster and PM2 all import this file, so they serve
// byte-identical responses with identical code.
import type { IncomingMessage, ServerResponse } from 'node:http'

const body = 'Hello, world!\n'
const headers = { 'content-type': 'text/plain', 'content-length': String(Buffer.byteLength(body)) }

export default function hello(_req: IncomingMessage, res: ServerResponse): void {
  res.writeHead(200, headers)
  res.end(body)
}
