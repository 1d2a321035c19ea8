// The apps people run, end to end: each example under examples/ served by a
// real corral (one worker) and spoken to by a real client (fetch, WebSocket,
// a raw socket). One test per app shape; see spec/apps.md.
import { connect } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { ROOT, fixture, freePort, killAll, startCorral, type Corral } from './helpers/corral.ts'

afterEach(killAll)

const example = (name: string) => `${ROOT}examples/${name}`

async function serve(app: string, signal: AbortSignal, extra: string[] = []): Promise<{ corral: Corral; url: string }> {
  const port = await freePort()
  const corral = startCorral(['-w', '1', '-b', `127.0.0.1:${port}`, ...extra, app], { signal })
  await corral.untilReady()
  return { corral, url: `http://127.0.0.1:${port}` }
}

const postJson = (url: string, body: unknown) =>
  fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })

describe('app shapes', () => {
  it('a plain (req, res) handler', async ({ signal }) => {
    const { corral, url } = await serve(example('hello.ts'), signal)
    const res = await fetch(url)
    expect(res.status).toBe(200)
    expect(await res.text()).toBe(`Hello from corral worker ${corral.workers()[0]}\n`)
  })

  it('Express 5, exported as it is', async ({ signal }) => {
    const { url } = await serve(example('express.ts'), signal)
    expect(await (await fetch(`${url}/`)).text()).toMatch(/^Hello from Express in worker \d+\n$/)
    expect(await (await fetch(`${url}/users/42`)).json()).toEqual({ id: '42' })
    expect(await (await postJson(`${url}/echo`, { a: [1, 2] })).json()).toEqual({ received: { a: [1, 2] } })
    expect((await fetch(`${url}/fail`)).status).toBe(500)
    expect((await fetch(`${url}/nope`)).status).toBe(404)
  })

  it('a CommonJS app (.cjs, module.exports = app)', async ({ signal }) => {
    const { url } = await serve(example('express.cjs'), signal)
    expect(await (await fetch(url)).text()).toMatch(/^Hello from CommonJS Express in worker \d+\n$/)
  })

  it('Koa 3 as app.callback(), middleware and all', async ({ signal }) => {
    const { url } = await serve(example('koa.ts'), signal)
    const res = await fetch(`${url}/json`)
    expect(res.status).toBe(200)
    expect(res.headers.get('x-response-time')).toMatch(/^\d+\.\d+ms$/)
    expect(await res.json()).toMatchObject({ framework: 'koa' })
    expect((await fetch(`${url}/missing`)).status).toBe(404)
  })

  it('a Koa app exported as the instance (path:name picks the export)', async ({ signal }) => {
    const { url } = await serve(`${example('koa.ts')}:app`, signal)
    const res = await fetch(`${url}/`)
    expect(await res.text()).toMatch(/^Hello from Koa in worker \d+\n$/)
    expect(res.headers.get('x-response-time')).not.toBeNull()
  })

  it('Fastify 5, exported as the instance: ready() runs its plugins', async ({ signal }) => {
    const { url } = await serve(example('fastify.ts'), signal)
    expect(await (await fetch(`${url}/`)).json()).toMatchObject({ hello: 'fastify' })
    expect(await (await postJson(`${url}/echo`, { b: true })).json()).toEqual({ received: { b: true } })
    // Registered by a plugin: only there once ready() has run.
    expect(await (await fetch(`${url}/plugin/hello/ada`)).text()).toBe('Hello, ada\n')
    expect((await fetch(`${url}/nope`)).status).toBe(404)
  })

  it('Hono 4: export default app', async ({ signal }) => {
    const { url } = await serve(example('hono.ts'), signal)
    expect(await (await fetch(`${url}/json/ada`)).json()).toMatchObject({ name: 'ada' })
    expect(await (await postJson(`${url}/echo`, [1, 'two'])).json()).toEqual({ received: [1, 'two'] })
  })

  it('a bare fetch handler sees the full URL, method and body', async ({ signal }) => {
    const { url } = await serve(example('fetch.ts'), signal)
    expect(await (await fetch(`${url}/where?x=1&y=two`)).json()).toMatchObject({
      method: 'GET',
      path: '/where',
      query: { x: '1', y: 'two' },
    })
    const echoed = await fetch(url, { method: 'POST', headers: { 'content-type': 'text/csv' }, body: 'a,b\n1,2\n' })
    expect(echoed.headers.get('content-type')).toBe('text/csv')
    expect(await echoed.text()).toBe('a,b\n1,2\n')
  })
})

describe('streaming and upgrades', () => {
  it('server-sent events arrive one by one, not when the stream ends', async ({ signal }) => {
    const { url } = await serve(example('sse.ts'), signal)
    const t0 = performance.now()
    const res = await fetch(`${url}/?count=3&every=400`)
    expect(res.headers.get('content-type')).toBe('text/event-stream')
    const arrivals: { at: number; text: string }[] = []
    const decoder = new TextDecoder()
    const reader = res.body!.getReader()
    for (let r = await reader.read(); !r.done; r = await reader.read())
      arrivals.push({ at: performance.now() - t0, text: decoder.decode(r.value) })
    const text = arrivals.map((a) => a.text).join('')
    expect(text.match(/^event: tick$/gm)).toHaveLength(3)
    // Buffered until the end, the first event would arrive with the last, ~800 ms in.
    const first = arrivals.find((a) => a.text.includes('id: 1'))!
    const last = arrivals.find((a) => a.text.includes('id: 3'))!
    expect(last.at - first.at).toBeGreaterThan(600)
  })

  it('WebSocket with ws: handshake, echo, and close 1001 when the worker drains', async ({ signal }) => {
    // A graceful timeout longer than the test may run: a worker waiting for the socket would hang the test.
    const { corral, url } = await serve(example('websocket.ts'), signal, ['--graceful-timeout', '600'])
    // A plain request still reaches the default export.
    expect((await fetch(url)).status).toBe(426)

    const ws = new WebSocket(`${url.replace('http', 'ws')}/room/1`)
    const messages: string[] = []
    const next = () =>
      new Promise<string>((resolve) => ws.addEventListener('message', (e) => resolve(String(e.data)), { once: true }))
    const closed = new Promise<CloseEvent>((resolve) => ws.addEventListener('close', resolve))
    messages.push(await next())
    expect(messages[0]).toBe(`hello from worker ${corral.workers()[0]}, you asked for /room/1`)
    ws.send('ping 1')
    expect(await next()).toBe('ping 1')

    // A graceful stop: the open WebSocket is told to go away, so the worker
    // does not sit out --graceful-timeout waiting for it.
    corral.signal('SIGTERM')
    expect((await closed).code).toBe(1001)
    expect((await corral.exited).code).toBe(0)
    expect(corral.log()).not.toMatch(/sending SIGKILL/)
  })

  it('an upgrade handler function gets the raw socket', async ({ signal }) => {
    const { corral, url } = await serve(fixture('app-upgrade-fn.ts'), signal)
    expect(await (await fetch(url)).text()).toBe('plain request\n')
    const port = Number(new URL(url).port)
    const reply = await new Promise<string>((resolve, reject) => {
      const socket = connect(port, '127.0.0.1', () => {
        socket.write('GET /chat HTTP/1.1\r\nhost: x\r\nconnection: upgrade\r\nupgrade: echo\r\n\r\nhello over echo')
      })
      let text = ''
      socket.setEncoding('utf8')
      socket.on('data', (chunk: string) => {
        text += chunk
        if (text.endsWith('hello over echo')) {
          socket.destroy()
          resolve(text)
        }
      })
      socket.on('error', reject)
    })
    expect(reply).toMatch(/^HTTP\/1\.1 101 Switching Protocols\r\n/)
    expect(reply).toContain(`x-worker: ${corral.workers()[0]}`)
  })
})
