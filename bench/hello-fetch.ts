// bench/hello.ts as a Web fetch handler: the same bytes, through the fetch
// adapter, to measure what the adapter costs against the plain handler.
const body = 'Hello, world!\n'

export default {
  fetch: (): Response =>
    new Response(body, { headers: { 'content-type': 'text/plain', 'content-length': String(body.length) } }),
}
