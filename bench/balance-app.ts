// bench/hello.ts plus a request counter, for bench/balance.ts: every process
// serving it (a corral worker, a node:cluster or PM2 worker, bare node:http)
// writes how many requests it has answered and on how many connections to
// $BALANCE_COUNTS/<pid>, every 100 ms when that changed, so the bench reads
// the per-worker split from the workers themselves. Per request an increment
// and a WeakSet lookup; the write is off the request path.
import { renameSync, writeFileSync } from 'node:fs'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { join } from 'node:path'
import hello from './hello.ts'

let served = 0
let connections = 0
const seen = new WeakSet<object>()
let written = ''
const dir = process.env.BALANCE_COUNTS
const write = () => {
  const text = `${served} ${connections}`
  if (!dir || text === written) return
  written = text
  // Written aside and renamed into place, so the bench never reads a file half written.
  const file = join(dir, String(process.pid))
  writeFileSync(`${file}.tmp`, text)
  renameSync(`${file}.tmp`, file)
}
write()
setInterval(write, 100).unref()

export default function countedHello(req: IncomingMessage, res: ServerResponse): void {
  served++
  if (!seen.has(req.socket)) {
    seen.add(req.socket)
    connections++
  }
  hello(req, res)
}
