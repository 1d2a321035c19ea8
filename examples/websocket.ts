// WebSockets with `ws`: export the WebSocketServer, made with { noServer: true },
// as `upgrade`. corral hands it every upgrade request; it completes the
// handshake and emits 'connection' as usual. When the worker drains (a reload,
// a stop), each client gets close code 1001 and can reconnect to a fresh worker.
// Plain HTTP requests go to the default export, as for any app.
//   npx corral examples/websocket.ts   →   open ws://127.0.0.1:8000/ from a client
import type { IncomingMessage, ServerResponse } from 'node:http'
import { WebSocketServer } from 'ws'

const wss = new WebSocketServer({ noServer: true })

wss.on('connection', (ws, req) => {
  ws.send(`hello from worker ${process.pid}, you asked for ${req.url}`)
  // Echo every message back.
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }))
})

export { wss as upgrade }

export default function page(_req: IncomingMessage, res: ServerResponse): void {
  res.writeHead(426, { 'content-type': 'text/plain', upgrade: 'websocket' })
  res.end('This endpoint speaks WebSocket.\n')
}
