// The contract's routes as fetch-API functions (Request in, Response out),
// written into each meta-framework's scratch app as one plain ESM module.
// Next.js route handlers, SvelteKit `+server.js`, Astro endpoints and Nitro
// (h3) handlers all take a `Request` and answer a `Response`, so each app's
// route files stay one line in that framework's own idiom and the battery
// sees the same bodies everywhere. It is plain JavaScript (not TypeScript)
// because each framework's bundler compiles it, and not all strip types the
// same way.
export const webRoutesSource = `import { createHash } from 'node:crypto'
import { setTimeout as delay } from 'node:timers/promises'

const bigBytes = 10 * 1024 * 1024
const bigChunk = new Uint8Array(64 * 1024).fill(0x78)

// 10 MiB of 'x', produced chunk by chunk as the client reads (pull), never
// held in memory at once.
export function big() {
  let sent = 0
  const body = new ReadableStream({
    pull(controller) {
      if (sent >= bigBytes) {
        controller.close()
        return
      }
      controller.enqueue(bigChunk.slice())
      sent += bigChunk.length
    },
  })
  return new Response(body, { headers: { 'content-type': 'application/octet-stream' } })
}

export function text(id) {
  const lines = []
  for (let n = 0; n < 1600; n++) lines.push('hello from ' + id + ', compressible line ' + n)
  return new Response(lines.join('\\n') + '\\n', { headers: { 'content-type': 'text/plain; charset=utf-8' } })
}

// Hashes a request body (a ReadableStream of bytes, or null) as it arrives, chunked or not.
export async function upload(body) {
  const hash = createHash('sha256')
  let bytes = 0
  if (body) {
    for await (const part of body) {
      hash.update(part)
      bytes += part.byteLength
    }
  }
  return Response.json({ bytes, sha256: hash.digest('hex') })
}

export async function multipart(request) {
  const form = await request.formData()
  const fields = {}
  const files = {}
  for (const [name, value] of form) {
    if (typeof value === 'string') fields[name] = value
    else files[name] = value.size
  }
  return Response.json({ fields, files })
}

export async function slow(url) {
  const ms = Number(new URL(url).searchParams.get('ms') ?? 0)
  await delay(Number.isFinite(ms) ? ms : 0)
  return new Response('slow done', { headers: { 'content-type': 'text/plain' } })
}

export function pid() {
  return new Response(String(process.pid), { headers: { 'content-type': 'text/plain' } })
}

export function whoami(ip, protocol) {
  return Response.json({ ip, protocol, pid: process.pid })
}

// 'data: <pid>' at once, then every 200 ms, until the client goes away.
// no-transform keeps a compressing server from buffering the stream.
export function sse(signal) {
  let timer
  const body = new ReadableStream({
    start(controller) {
      const tick = () => controller.enqueue(new TextEncoder().encode('data: ' + process.pid + '\\n\\n'))
      const stop = () => {
        clearInterval(timer)
        try {
          controller.close()
        } catch {}
      }
      tick()
      timer = setInterval(tick, 200)
      signal?.addEventListener('abort', stop, { once: true })
    },
    cancel() {
      clearInterval(timer)
    },
  })
  return new Response(body, {
    headers: { 'content-type': 'text/event-stream', 'cache-control': 'no-cache, no-transform' },
  })
}
`
