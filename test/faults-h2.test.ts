// HTTP/2 floods on a TLS h2 session, frames written by hand (issue 14,
// faults): rapid reset (CVE-2023-44487: a stream opened and cancelled at once,
// thousands of times) and CONTINUATION (CVE-2024-27983 and kin: a header block
// that never ends). The worker survives each and answers a normal request
// afterwards; what Node does with each flood is in spec/reliability.md.
import { connect as h2Connect } from 'node:http2'
import { connect as tlsConnect, type TLSSocket } from 'node:tls'
import { afterEach, expect, it } from 'vitest'
import { fixture, freePort, killAll, startCorral, type Corral } from './helpers/corral.ts'
import { certsForTests } from './helpers/tls-certs.ts'

const pki = certsForTests()
afterEach(killAll)

const HEADERS = 0x1
const RST_STREAM = 0x3
const SETTINGS = 0x4
const GOAWAY = 0x7
const CONTINUATION = 0x9
const END_STREAM = 0x1
const END_HEADERS = 0x4

function frame(type: number, flags: number, stream: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const head = Buffer.alloc(9)
  head.writeUIntBE(payload.length, 0, 3)
  head[3] = type
  head[4] = flags
  head.writeUInt32BE(stream, 5)
  return Buffer.concat([head, payload])
}

// HPACK, static table only: :method GET, :scheme https, :path /, and :authority as a literal.
const authority = Buffer.from('127.0.0.1')
const requestBlock = Buffer.concat([Buffer.from([0x82, 0x87, 0x84, 0x01, authority.length]), authority])
/** A literal header without indexing, new name: x-flood, 1 000 bytes (the length as HPACK's 7-bit prefixed integer: 127 + 873). */
const floodBlock = Buffer.concat([
  Buffer.from([0x00, 7]),
  Buffer.from('x-flood'),
  Buffer.from([0x7f, 0xe9, 0x06]),
  Buffer.alloc(1000, 0x61),
])

interface Outcome {
  /** The GOAWAY error code the server sent, if it sent one. */
  goaway?: number
  /** The connection ended (by the server, or it reset it). */
  closed: boolean
}

/** A raw h2 session over TLS: the preface, then whatever `flood` writes; resolves once the server has closed it. */
function rawSession(port: number, flood: (socket: TLSSocket) => void): Promise<Outcome> {
  return new Promise((resolve) => {
    const outcome: Outcome = { closed: false }
    let received = Buffer.alloc(0)
    const socket = tlsConnect(
      { host: '127.0.0.1', port, ca: pki.caPem, ALPNProtocols: ['h2'], servername: 'localhost' },
      () => {
        socket.write(Buffer.concat([Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'), frame(SETTINGS, 0, 0)]))
        flood(socket)
      },
    )
    socket.on('data', (chunk: Buffer) => {
      received = Buffer.concat([received, chunk])
      while (received.length >= 9) {
        const length = received.readUIntBE(0, 3)
        if (received.length < 9 + length) break
        if (received[3] === GOAWAY) outcome.goaway = received.readUInt32BE(9 + 4)
        received = received.subarray(9 + length)
      }
    })
    socket.on('error', () => {})
    socket.on('close', () => {
      outcome.closed = true
      resolve(outcome)
    })
  })
}

function h2Pid(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const session = h2Connect(`https://127.0.0.1:${port}`, { ca: pki.caPem })
    session.on('error', reject)
    const req = session.request({ ':path': '/' })
    let body = ''
    req.setEncoding('utf8')
    req.on('data', (c: string) => (body += c))
    req.on('end', () => {
      session.close()
      resolve((JSON.parse(body) as { pid: number }).pid)
    })
    req.on('error', reject)
  })
}

async function serve(signal: AbortSignal): Promise<{ corral: Corral; port: number }> {
  const port = await freePort()
  const corral = startCorral(
    [
      '-w',
      '1',
      '-b',
      `127.0.0.1:${port}`,
      '--certfile',
      pki.certs.serverCert,
      '--keyfile',
      pki.certs.serverKey,
      '--http-protocols',
      'h2,h1',
      fixture('app-listener-info.ts'),
    ],
    { signal },
  )
  await corral.untilReady()
  return { corral, port }
}

const STREAMS = 5000

it('rapid reset: 5 000 streams opened and cancelled at once; the worker lives on and serves', async ({ signal }) => {
  const { corral, port } = await serve(signal)
  const pid = await h2Pid(port)
  const outcome = await rawSession(port, (socket) => {
    const frames: Buffer[] = []
    for (let i = 0; i < STREAMS; i++) {
      const stream = 2 * i + 1
      frames.push(frame(HEADERS, END_HEADERS | END_STREAM, stream, requestBlock))
      frames.push(frame(RST_STREAM, 0, stream, Buffer.from([0, 0, 0, 8]))) // CANCEL
    }
    socket.end(Buffer.concat(frames))
  })
  expect(outcome.closed).toBe(true)
  expect(await h2Pid(port)).toBe(pid)
  expect(corral.workers()).toEqual([pid])
})

it('CONTINUATION flood: a header block that never ends; the worker lives on and serves', async ({ signal }) => {
  const { corral, port } = await serve(signal)
  const pid = await h2Pid(port)
  const outcome = await rawSession(port, (socket) => {
    socket.write(frame(HEADERS, 0, 1, requestBlock))
    // 20 000 CONTINUATION frames of 1 KB each, never END_HEADERS: 20 MB of header block, written as the server takes it.
    let sent = 0
    const more = () => {
      while (sent < 20_000 && !socket.destroyed) {
        sent++
        if (!socket.write(frame(CONTINUATION, 0, 1, floodBlock))) return void socket.once('drain', more)
      }
      socket.end()
    }
    more()
  })
  expect(outcome.closed).toBe(true)
  expect(await h2Pid(port)).toBe(pid)
  expect(corral.workers()).toEqual([pid])
})
