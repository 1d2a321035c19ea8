// The smallest corral app: a Node (req, res) handler.
//   npx corral examples/hello.ts   →   curl http://127.0.0.1:8000
import type { IncomingMessage, ServerResponse } from 'node:http'

export default function hello(_req: IncomingMessage, res: ServerResponse): void {
  res.writeHead(200, { 'content-type': 'text/plain' })
  res.end(`Hello from corral worker ${process.pid}\n`)
}
