// Server-sent events from a fetch handler: the Response body is a stream, and
// each event reaches the client as it is enqueued, not when the stream ends.
//   npx corral examples/sse.ts   →   curl -N 'http://127.0.0.1:8000/?count=5'
const encoder = new TextEncoder()

export default function events(request: Request): Response {
  const url = new URL(request.url)
  const count = Math.min(Number(url.searchParams.get('count') ?? 10) || 10, 1000)
  const every = Math.min(Number(url.searchParams.get('every') ?? 1000) || 1000, 60_000)
  let timer: NodeJS.Timeout | undefined
  let sent = 0
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      const tick = () => {
        sent++
        controller.enqueue(
          encoder.encode(`id: ${sent}\nevent: tick\ndata: ${JSON.stringify({ n: sent, at: Date.now() })}\n\n`),
        )
        if (sent >= count) {
          clearInterval(timer)
          controller.close()
        }
      }
      tick()
      if (sent < count) timer = setInterval(tick, every)
    },
    // The client went away: stop producing.
    cancel() {
      clearInterval(timer)
    },
  })
  return new Response(body, {
    headers: { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' },
  })
}
