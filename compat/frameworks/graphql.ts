// A GraphQL server: GraphQL Yoga on Node's own http.Server, started the way
// Yoga's docs start it (`createServer(yoga).listen(4000)`; here
// `$PORT ?? 4000`), with the contract's routes served beside /graphql by the
// plain node:http routes module of node-listen.ts and a `ws` server on /ws.
//
// Why Yoga rather than Apollo Server: Yoga is a (req, res) handler and a
// fetch handler at once, so it sits on a plain http.Server next to other
// routes, and it answers subscriptions over SSE (GraphQL over SSE) with no
// other package; Apollo Server's standalone server owns the whole
// http.Server (no room for other routes), and beside other routes it needs
// an Express integration, which would make this column a second Express one.
import type { Framework } from '../framework.ts'
import { routesModule } from './node-listen.ts'

const server = `import { createServer } from 'node:http'
import { createSchema, createYoga } from 'graphql-yoga'
import { WebSocketServer } from 'ws'
import { routes } from './routes.js'

const yoga = createYoga({
  graphiql: false,
  schema: createSchema({
    typeDefs: /* GraphQL */ \`
      type Query {
        hello: String!
        pid: Int!
      }
      type Subscription {
        ticks(count: Int!): Int!
      }
    \`,
    resolvers: {
      Query: {
        hello: () => 'hello from graphql',
        pid: () => process.pid,
      },
      Subscription: {
        ticks: {
          subscribe: async function* (_, { count }) {
            for (let i = 1; i <= count; i++) {
              await new Promise((resolve) => setTimeout(resolve, 100))
              yield { ticks: i }
            }
          },
        },
      },
    },
  }),
})

const contract = routes('graphql')
const server = createServer((req, res) =>
  req.url.startsWith(yoga.graphqlEndpoint) ? yoga(req, res) : contract(req, res),
)

const wss = new WebSocketServer({ server, path: '/ws' })
wss.on('connection', (socket) => {
  socket.send(String(process.pid))
  socket.on('message', (data, isBinary) => socket.send(data, { binary: isBinary }))
})

const port = process.env.PORT ?? 4000
server.listen(port, () => {
  console.log(\`GraphQL server at http://localhost:\${port}\${yoga.graphqlEndpoint}\`)
})
`

const graphql: Framework = {
  id: 'graphql',
  title: 'GraphQL Yoga',
  versionOf: 'graphql-yoga',
  dependencies: { 'graphql-yoga': '5.24.1', graphql: '17.1.0', busboy: '1.6.0', ws: '8.23.1' },
  files: { 'routes.js': routesModule, 'server.js': server },
  entry: 'server.js',
  listensItself: true,
  h2: true,
}
export default graphql
