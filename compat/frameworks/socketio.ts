// Socket.IO 4 on a node:http server that calls listen($PORT ?? 3000) itself,
// as Socket.IO's "server initialization" docs do (`new Server(httpServer)`),
// with the contract's routes from node-listen.ts's routes module and a `ws`
// server on /ws beside Socket.IO's own /socket.io/ endpoint. Socket.IO
// events: on connection the server emits `pid` (the worker's pid), and it
// answers `echo` with the same message through the acknowledgement.
//
// Several workers and Socket.IO's HTTP long-polling transport (the client's
// default first transport, before it upgrades to a WebSocket):
// - Long-polling sends many HTTP requests for one session, often over two
//   connections at once (the pending GET and the POSTs). Each request must
//   reach the process holding the session, else Engine.IO answers 400
//   `{"code":1,"message":"Session ID unknown"}`. Socket.IO's docs ("Using
//   multiple nodes") ask for sticky sessions: a proxy routing by cookie or
//   client address, or @socket.io/sticky, whose node:cluster primary reads
//   each request and routes it by its `sid`.
// - corral has no sticky sessions and will not have them: the master never
//   touches a client (the kernel gives each connection to whichever worker
//   accepts it, also with --reuse-port, which hashes the whole 4-tuple,
//   ports included). So with `-w 2` or more a polling session breaks.
// - What works under corral: (1) WebSocket-only clients
//   (`io(url, { transports: ['websocket'] })`, no polling fallback; the
//   server may also set `transports: ['websocket']`): one connection holds
//   the whole session, on one worker; (2) `-w 1`; (3) several corral
//   instances of one worker each behind a proxy with sticky sessions (nginx
//   `ip_hash` or a cookie).
// - Broadcasts (`io.emit`, rooms) reach only the sockets of the worker that
//   emits: across workers Socket.IO needs an adapter (Redis, Postgres, MongoDB
//   adapters...). @socket.io/cluster-adapter does not apply: it talks
//   through node:cluster's primary, and corral's workers are not node:cluster
//   workers.
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
}
export default socketio
