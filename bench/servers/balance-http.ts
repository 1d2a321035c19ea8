// bench/servers/http.ts with bench/balance-app.ts's counting handler: bare
// node:http for bench/balance.ts, and the script its node:cluster and PM2
// workers run.
//   PORT=8000 BALANCE_COUNTS=/tmp/counts node bench/servers/balance-http.ts
import { createServer } from 'node:http'
import countedHello from '../balance-app.ts'

const port = Number(process.env.PORT ?? 8000)
const host = process.env.HOST ?? '127.0.0.1'
createServer(countedHello).listen(port, host)
