// Socket.IO 4 on a node:http server that calls listen($PORT ?? 3000) itself,
// as Socket.IO's "server initialization" docs do (`new Server(httpServer)`),
// with the contract's routes from node-listen.ts's routes module and a `ws`
// server on /ws beside Socket.IO's own /socket.io/ endpoint. Socket.IO
// events: on connection the server emits `pid` (the worker's pid), and it
// answers `echo` with the same message through the acknowledgement.
//
// Several workers and Socket.IO's HTTP long-polling transport (the client's
// default first transport, before it upgrades to a WebSocket) is the note
// below (`pollingNote`), also in spec/apps.md. Measured with
// compat/check-app.ts's app under corral on this machine, 20 Socket.IO
// clients in turn (socket.io-client 4.8.4, five acknowledged echoes each):
// -w 2: polling only 0 of 20 sessions worked ("xhr post error", "xhr poll
// error": Engine.IO's 400 "Session ID unknown" from the other worker), the
// default polling-then-websocket 2 of 20, websocket only 20 of 20;
// -w 1: 20 of 20 on every transport.
import type { Framework } from '../framework.ts'
import { routesModule } from './node-listen.ts'

const server = `import { createServer } from 'node:http'
import { Server } from 'socket.io'
import { WebSocketServer } from 'ws'
import { routes } from './routes.js'

const httpServer = createServer(routes('socketio'))
const io = new Server(httpServer)

io.on('connection', (socket) => {
  socket.emit('pid', process.pid)
  socket.on('echo', (message, ack) => ack(message))
})

// Socket.IO takes the upgrades to /socket.io/; the plain WebSocket on /ws is
// routed here by hand (a ws server given the http.Server would refuse every
// other path, Socket.IO's included).
const wss = new WebSocketServer({ noServer: true })
wss.on('connection', (socket) => {
  socket.send(String(process.pid))
  socket.on('message', (data, isBinary) => socket.send(data, { binary: isBinary }))
})
httpServer.on('upgrade', (req, socket, head) => {
  if (new URL(req.url, 'http://localhost').pathname === '/ws') {
    wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req))
  }
})

const port = process.env.PORT ?? 3000
httpServer.listen(port, () => {
  console.log(\`listening on port \${port}\`)
})
`

/** What Socket.IO's polling transport needs with several workers, and what corral offers. */
export const pollingNote =
  'Socket.IO’s HTTP long-polling transport (the client’s default first transport) needs every request of a ' +
  'session to reach the worker that holds it, or Engine.IO answers 400 "Session ID unknown": Socket.IO asks for ' +
  'sticky sessions (socket.io/docs/v4/using-multiple-nodes). corral has none, by design: the master never touches ' +
  'a client and the kernel gives each connection to whichever worker accepts it (--reuse-port hashes the whole ' +
  '4-tuple, ports included). Under corral with several workers, use WebSocket-only clients ' +
  '(`io(url, { transports: ["websocket"] })`: one connection holds the whole session), or -w 1, or several ' +
  'one-worker corrals behind a proxy with sticky sessions (nginx ip_hash, a cookie). Broadcasts (io.emit, rooms) ' +
  'reach only the emitting worker’s sockets unless an adapter (Redis, Postgres…) joins the workers; ' +
  '@socket.io/cluster-adapter does not apply (it needs node:cluster’s primary, and corral’s workers are not ' +
  'node:cluster workers).'

const socketio: Framework = {
  id: 'socketio',
  title: 'Socket.IO',
  versionOf: 'socket.io',
  dependencies: { 'socket.io': '4.8.4', busboy: '1.6.0', ws: '8.23.1' },
  // The grid's Socket.IO client, installed beside the app.
  devDependencies: { 'socket.io-client': '4.8.4' },
  files: { 'routes.js': routesModule, 'server.js': server },
  entry: 'server.js',
  listensItself: true,
  h2: true,
  notes: [pollingNote],
}
export default socketio
