// Why a case fails where it fails, written by people once a failure is
// understood: a corral bug (then fixed, and the entry goes), or a framework
// limit, with its upstream issue. Keyed `<framework id>/<case id>`, or
// `*/<case id>` for a failure every framework shares. spec/compat.md prints
// these under the grid; a failure with no entry here is printed as
// "unexplained", with what the harness saw, fails `npm run compat` (exit 1)
// and fails the fast subset in npm test.

/** A `ws` server attached to the app's own server: nobody closes its clients when a worker drains. */
const OWN_WS_SERVER =
  "The app's `ws` server sits on the server its own listen() returned, so its clients are the app's to close: " +
  'corral sends 1001 only to the clients of an exported `upgrade` (spec/apps.md), and since ws 8 closing a ' +
  'WebSocketServer no longer closes its clients (websockets/ws#2137, ws 8.0.0 release notes). The socket stays up ' +
  'until the graceful timeout and is then cut (1006); the client reconnects to the new generation (the next row ' +
  'passes). An app that wants 1001 closes its clients on SIGTERM, as under any process manager.'

export const EXPLAINED: Readonly<Record<string, string>> = {
  'express4/ws-hup-1001': OWN_WS_SERVER,
  'graphql/ws-hup-1001': OWN_WS_SERVER,
  'node-listen/ws-hup-1001': OWN_WS_SERVER,
  'nest-express/ws-hup-1001': OWN_WS_SERVER,
  'nest-fastify/ws-hup-1001': OWN_WS_SERVER,
  'socketio/ws-hup-1001': OWN_WS_SERVER,
  'fastify5/ws-hup-1001':
    '@fastify/websocket closes its clients in a preClose hook, when Fastify closes (`fastify.close()`), which a draining worker does ' +
    "not call: corral stops serving the app's server, the app's own shutdown code is its own. The socket is cut at " +
    'the graceful timeout (1006) and the client reconnects to the new generation (the next row passes).',
  // Nitro's WebSocket support is crossws's node adapter: a `ws` server of its own, fed from the server's `upgrade` event.
  'nuxt/ws-hup-1001': OWN_WS_SERVER,
}
