// Fuzzing the worker's HTTP front door: valid requests mutated by fast-check
// (bytes inserted, deleted or flipped, header lines duplicated, framing
// headers added: Content-Length and Transfer-Encoding games) go to a real
// corral worker. Whatever arrives, the worker must answer or close within a
// timeout, never with a 5xx other than 505, and the same worker must still
// serve a good request at the end.
import fc from 'fast-check'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { fixture, freePort, killAll, startCorral, type Corral } from './helpers/corral.ts'
import { exchange, goodRequest, parseResponses } from './helpers/http-wire.ts'

afterAll(killAll)

const SEEDS = [
  'GET /path?q=1 HTTP/1.1\r\nHost: localhost\r\nAccept: */*\r\n\r\n',
  'GET / HTTP/1.0\r\n\r\n',
  'POST /upload HTTP/1.1\r\nHost: localhost\r\nContent-Type: text/plain\r\nContent-Length: 11\r\n\r\nhello world',
  'POST /chunked HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6; ext=1\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n',
  'GET /a HTTP/1.1\r\nHost: localhost\r\n\r\nGET /b HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n',
  'PUT /x HTTP/1.1\r\nHost: localhost\r\nContent-Length: 3\r\nConnection: keep-alive\r\n\r\nabcGET /next HTTP/1.1\r\nHost: localhost\r\n\r\n',
  'OPTIONS * HTTP/1.1\r\nHost: localhost\r\n\r\n',
]

/** Bytes worth inserting: line ends, separators, controls, high bytes, digits. */
const INTERESTING = [...'\r\n\0\t :,;=-_"\\/ ?#%', '\x7f', '\x80', '\xff', '0', '9', 'f', 'A', 'z'].map((c) =>
  c.charCodeAt(0),
)

const FRAMING = [
  'Content-Length: 0',
  'Content-Length: 5',
  'Content-Length: 99999',
  'Content-Length: -1',
  'Content-Length: 5, 5',
  'Content-Length:5',
  'Transfer-Encoding: chunked',
  'Transfer-Encoding: gzip, chunked',
  'Transfer-Encoding: chunked, gzip',
  'Transfer-Encoding: identity',
  'Transfer-Encoding:\tchunked',
  'Transfer-Encoding: chunked\r\n extended',
  'Host: evil.example',
  'Connection: close',
  'Expect: 100-continue',
  'Upgrade: websocket\r\nConnection: Upgrade',
]

type Mutation = (b: Buffer) => Buffer

const at = (b: Buffer, f: number) => Math.min(b.length, Math.floor(f * (b.length + 1)))
const headEnd = (b: Buffer) => {
  const i = b.indexOf('\r\n\r\n')
  return i < 0 ? b.length : i + 2
}

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc
    .tuple(
      fc.double({ min: 0, max: 1, noNaN: true }),
      fc.array(fc.oneof(fc.constantFrom(...INTERESTING), fc.integer({ min: 0, max: 255 })), {
        minLength: 1,
        maxLength: 4,
      }),
    )
    .map(
      ([f, bytes]): Mutation =>
        (b) => {
          const i = at(b, f)
          return Buffer.concat([b.subarray(0, i), Buffer.from(bytes), b.subarray(i)])
        },
    ),
  fc.tuple(fc.double({ min: 0, max: 1, noNaN: true }), fc.integer({ min: 1, max: 8 })).map(
    ([f, n]): Mutation =>
      (b) => {
        const i = at(b, f)
        return Buffer.concat([b.subarray(0, i), b.subarray(i + n)])
      },
  ),
  fc.tuple(fc.double({ min: 0, max: 1, noNaN: true }), fc.integer({ min: 1, max: 255 })).map(
    ([f, x]): Mutation =>
      (b) => {
        const out = Buffer.from(b)
        const i = Math.min(out.length - 1, at(b, f))
        if (i >= 0) out[i] = out[i]! ^ x
        return out
      },
  ),
  // Duplicate one header line of the first head.
  fc.double({ min: 0, max: 1, noNaN: true }).map(
    (f): Mutation =>
      (b) => {
        const end = headEnd(b)
        const lines = b.subarray(0, end).toString('latin1').split('\r\n')
        if (lines.length < 3) return b
        const k = 1 + Math.floor(f * (lines.length - 2))
        lines.splice(k, 0, lines[k]!)
        return Buffer.concat([Buffer.from(lines.join('\r\n'), 'latin1'), b.subarray(end)])
      },
  ),
  // Add a framing (or otherwise loaded) header line to the first head.
  fc.constantFrom(...FRAMING).map(
    (line): Mutation =>
      (b) => {
        const first = b.indexOf('\r\n')
        if (first < 0) return b
        return Buffer.concat([b.subarray(0, first + 2), Buffer.from(`${line}\r\n`, 'latin1'), b.subarray(first + 2)])
      },
  ),
)

const request = fc
  .tuple(fc.constantFrom(...SEEDS), fc.array(mutation, { minLength: 1, maxLength: 3 }))
  .map(([seed, ms]) => ms.reduce<Buffer>((b, m) => m(b), Buffer.from(seed, 'latin1')))

// 100: the interim answer to Expect: 100-continue.
const ANSWERS = new Set([100, 200, 400, 408, 413, 414, 431, 501, 505])

let corral: Corral
let port: number
let worker: number | undefined

beforeAll(async () => {
  port = await freePort()
  corral = startCorral(['-w', '1', '-b', `127.0.0.1:${port}`, fixture('app-echo.ts')])
  await corral.untilReady()
  worker = corral.workers()[0]
})

it('mutated requests always get an answer or a close, and never crash or hang the worker', async () => {
  let answered = 0
  await fc.assert(
    fc.asyncProperty(request, async (bytes) => {
      const r = await exchange(port, bytes, { timeoutMs: 3000 })
      // The client half-closed after writing: the server must finish and close.
      expect(r.closed).toBe(true)
      for (const res of parseResponses(r.data)) {
        // Whole responses with a status corral gives; no 500 from a confused handler.
        expect(ANSWERS).toContain(res.status)
        answered++
      }
    }),
    { numRuns: Number(process.env.FUZZ_RUNS ?? 1000) },
  )
  expect(answered).toBeGreaterThan(0)
  expect(corral.workers()).toEqual([worker])
  const res = await goodRequest(port)
  expect(res?.status).toBe(200)
  expect(JSON.parse(res!.body.toString('utf8')).pid).toBe(worker)
  expect(corral.log()).not.toMatch(/Uncaught|Error handling request|Exception/)
})
