// Slow clients: a slowloris (a head sent a byte at a time, or nothing at all)
// and a slow body cannot hold a worker's connections. With
// --headers-timeout 2 --request-timeout 3, a crowd of slow connections is
// open while a normal request is served; then each slow one is answered 408
// and closed soon after its deadline.
import { connect } from 'node:net'
import { afterAll, expect, it } from 'vitest'
import { fixture, freePort, killAll, startCorral, waitFor } from './helpers/corral.ts'
import { serverSideOwners } from './helpers/sockets.ts'
import { goodRequest, parseResponses } from './helpers/http-wire.ts'

afterAll(killAll)

interface Slow {
  /** Resolves when the server closes the connection. */
  closed: Promise<{ afterMs: number; data: Buffer }>
  stop(): void
}

/** Sends `first` at once, then one byte of `rest` every `everyMs`, until the server closes. */
function slowClient(port: number, first: string, rest: string, everyMs: number): Slow {
  const socket = connect(port, '127.0.0.1')
  const t0 = Date.now()
  const chunks: Buffer[] = []
  let i = 0
  let timer: NodeJS.Timeout | undefined
  socket.on('connect', () => {
    if (first) socket.write(first)
    timer = setInterval(() => {
      if (i < rest.length && socket.writable) socket.write(rest[i++]!)
    }, everyMs)
  })
  socket.on('data', (c: Buffer) => chunks.push(c))
  socket.on('error', () => {})
  const closed = new Promise<{ afterMs: number; data: Buffer }>((resolve) =>
    socket.on('close', () => {
      clearInterval(timer)
      resolve({ afterMs: Date.now() - t0, data: Buffer.concat(chunks) })
    }),
  )
  return {
    closed,
    stop: () => {
      clearInterval(timer)
      socket.destroy()
    },
  }
}

it('slowloris and slow-body connections are closed with 408 near their deadlines; a normal request is served meanwhile', async () => {
  const port = await freePort()
  const corral = startCorral([
    '-w',
    '1',
    '-b',
    `127.0.0.1:${port}`,
    '--headers-timeout',
    '2',
    '--request-timeout',
    '3',
    fixture('app-echo.ts'),
  ])
  await corral.untilReady()
  const [worker] = corral.workers()

  const head = `GET / HTTP/1.1\r\nHost: localhost\r\nX-Padding: ${'p'.repeat(200)}\r\n\r\n`
  const silent = Array.from({ length: 20 }, () => slowClient(port, '', '', 1000))
  const trickleHead = Array.from({ length: 20 }, () => slowClient(port, '', head, 100))
  const trickleBody = Array.from({ length: 10 }, () =>
    slowClient(port, 'POST / HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1000\r\n\r\n', 'b'.repeat(1000), 100),
  )
  const all = [...silent, ...trickleHead, ...trickleBody]
  let slowClosed = 0
  for (const s of all) void s.closed.then(() => slowClosed++)
  try {
    // Every slow connection accepted and held by the worker before the good request goes in.
    await waitFor(
      () => {
        const owners = serverSideOwners(port)
        return owners.length === all.length && owners.every((o) => o === String(worker))
      },
      { what: 'every slow connection held by the worker' },
    )
    const ok = await goodRequest(port)
    expect(ok?.status).toBe(200)
    // Served while every slow connection was still open.
    expect(slowClosed).toBe(0)

    const headsClosed = await Promise.all([...silent, ...trickleHead].map((s) => s.closed))
    const bodiesClosed = await Promise.all(trickleBody.map((s) => s.closed))
    for (const { afterMs, data } of headsClosed) {
      // --headers-timeout 2: no sooner. (How much later depends on the machine's load: that belongs in bench/.)
      expect(afterMs).toBeGreaterThanOrEqual(2000)
      expect(parseResponses(data).map((r) => r.status)).toEqual([408])
    }
    for (const { afterMs, data } of bodiesClosed) {
      // The head arrived at once, so only --request-timeout 3 applies.
      expect(afterMs).toBeGreaterThanOrEqual(3000)
      expect(parseResponses(data).map((r) => r.status)).toEqual([408])
    }
    expect(corral.workers()).toEqual([worker])
    expect((await goodRequest(port))?.status).toBe(200)
  } finally {
    for (const s of all) s.stop()
  }
})

it('the defaults are 20 s for the head and 60 s for the whole request', async () => {
  const { defaults } = await import('../src/config/resolve.ts')
  const d = defaults()
  expect([d.headersTimeout, d.requestTimeout]).toEqual([20, 60])
})
