// The HTTP app bench/dirty.ts drives: the dirty calls are made and timed
// inside the HTTP worker. GET /rt?kind=noop|buf&n=N: N calls one after the
// other, their round trips in ms. GET /tput?n=N&c=C: N calls, C at a time,
// and how long they took. GET / answers at once (the HTTP path, for wrk).
import type { IncomingMessage, ServerResponse } from 'node:http'
import { dirty } from 'corral'

const echo = dirty('echo')
const payloads = { noop: 0, buf: Buffer.alloc(1024 * 1024, 7) }

export default async function app(req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://x')
  const n = Number(url.searchParams.get('n') ?? 1000)
  if (url.pathname === '/rt') {
    const payload = payloads[url.searchParams.get('kind') === 'buf' ? 'buf' : 'noop']
    const times: number[] = []
    for (let i = 0; i < n; i++) {
      const t = performance.now()
      await echo.call('echo', payload)
      times.push(performance.now() - t)
    }
    return void res.end(JSON.stringify({ times, pid: process.pid }))
  }
  if (url.pathname === '/tput') {
    const c = Number(url.searchParams.get('c') ?? 8)
    let left = n
    const t = performance.now()
    await Promise.all(
      Array.from({ length: c }, async () => {
        while (left-- > 0) await echo.call('echo', 0)
      }),
    )
    return void res.end(JSON.stringify({ calls: n, ms: performance.now() - t, pid: process.pid }))
  }
  res.end('ok\n')
}
