// A bare Web fetch handler: one Request in, one Response out. No framework.
// (`export default { fetch }` works the same.)
//   npx corral examples/fetch.ts   →   curl 'http://127.0.0.1:8000/where?x=1'
export default async function handle(request: Request): Promise<Response> {
  const url = new URL(request.url)
  if (request.method === 'POST') {
    return new Response(await request.text(), {
      headers: { 'content-type': request.headers.get('content-type') ?? 'text/plain' },
    })
  }
  return Response.json({
    method: request.method,
    path: url.pathname,
    query: Object.fromEntries(url.searchParams),
    pid: process.pid,
  })
}
