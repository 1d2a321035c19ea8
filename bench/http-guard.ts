// What src/http/guard.ts adds to each request, measured alone: the request
// check run in a loop on a browser-like request (11 header fields), against
// calling the handler directly. Prints nanoseconds per request; asserts
// nothing. `node bench/http-guard.ts` (the pinned Node: node_modules/.bin/node).
import type { IncomingMessage, ServerResponse } from 'node:http'
import { guardRequests } from '../src/http/guard.ts'

const settings = {
  limitRequestLine: 4094,
  limitRequestFields: 100,
  limitRequestFieldSize: 8190,
  headersTimeout: 20,
  requestTimeout: 60,
}
let served = 0
const handler = (_req: IncomingMessage, _res: ServerResponse) => void served++
const guarded = guardRequests(handler, settings)

// Only what the check reads; the rest of IncomingMessage is not touched.
const req = {
  httpVersionMajor: 1,
  httpVersionMinor: 1,
  method: 'GET',
  url: '/products/42?ref=home&utm_source=newsletter',
  rawHeaders: [
    'Host',
    'shop.example.com',
    'User-Agent',
    'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36',
    'Accept',
    'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8',
    'Accept-Language',
    'en-US,en;q=0.5',
    'Accept-Encoding',
    'gzip, deflate, br',
    'Connection',
    'keep-alive',
    'Cookie',
    'session=0123456789abcdef; theme=dark',
    'Upgrade-Insecure-Requests',
    '1',
    'Sec-Fetch-Dest',
    'document',
    'Content-Type',
    'text/plain',
    'Cache-Control',
    'max-age=0',
  ],
} as unknown as IncomingMessage
const res = {} as ServerResponse

const N = 5_000_000
function time(f: (req: IncomingMessage, res: ServerResponse) => void): number {
  const t0 = process.hrtime.bigint()
  for (let i = 0; i < N; i++) f(req, res)
  return Number(process.hrtime.bigint() - t0) / N
}

const rows: Record<string, number[]> = { guarded: [], direct: [] }
for (let round = 0; round < 5; round++) {
  rows.guarded!.push(time(guarded))
  rows.direct!.push(time(handler))
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
for (const [name, xs] of Object.entries(rows)) {
  console.log(
    `${name.padEnd(8)} ${median(xs).toFixed(1).padStart(6)} ns/request (median of ${xs.length}; runs: ${xs.map((x) => x.toFixed(0)).join(', ')})`,
  )
}
console.log(
  `the guard adds ${(median(rows.guarded!) - median(rows.direct!)).toFixed(0)} ns to each request (${served} calls)`,
)
