// The battery: one row of the grid per case, in the order of the table. Each
// is something a user of the framework would notice when it breaks. The
// checks themselves live in grid.ts, grouped by the corral they need.

export interface Case {
  readonly id: string
  readonly title: string
}

export const CASES = [
  { id: 'page', title: 'GET / answers 200 with the page' },
  { id: 'not-found', title: "an unknown path gets the framework's 404" },
  { id: 'head', title: 'HEAD / answers as GET does, without a body' },
  { id: 'keep-alive', title: 'a second request reuses the kept-alive connection' },
  { id: 'both-workers', title: 'requests on new connections reach both workers' },
  { id: 'only-corral-bind', title: "nothing listens but corral's bind (ss)" },
  { id: 'big-download', title: 'a 10 MiB streamed response arrives whole' },
  { id: 'upload-length', title: 'a 10 MiB upload with Content-Length arrives whole' },
  { id: 'upload-chunked', title: 'a 10 MiB chunked upload arrives whole' },
  { id: 'multipart', title: 'a multipart form (curl -F): its field and a 1 MiB file' },
  { id: 'expect-continue', title: '`Expect: 100-continue`: 100 before the body, then the answer' },
  { id: 'compression', title: 'gzip when the client asks for it' },
  { id: 'no-compression-unasked', title: 'no compression when the client does not ask' },
  { id: 'client-abort', title: 'a client aborting mid-response: the workers keep serving' },
  { id: 'throw-500', title: 'a handler that throws: 500' },
  { id: 'throw-keeps-serving', title: 'after the throw, the same workers keep serving' },
  { id: 'whoami-direct', title: 'client address and scheme, direct: 127.0.0.1, http' },
  { id: 'forged-forwarded', title: 'X-Forwarded-For/-Proto from an untrusted client are not believed' },
  { id: 'proxy-client-ip', title: "behind nginx: the client's address (--forwarded-allow-ips)" },
  { id: 'proxy-scheme', title: 'behind nginx terminating TLS: scheme https' },
  { id: 'sse-first-event', title: 'SSE: the first event arrives at once, as text/event-stream' },
  { id: 'sse-flow', title: 'SSE: events keep flowing (EventSource)' },
  { id: 'ws-echo', title: 'WebSocket (ws): opens and echoes' },
  { id: 'sse-hup-stays-up', title: 'HUP: an SSE stream stays up on its old worker after the new generation is ready' },
  {
    id: 'sse-hup-ends-cleanly',
    title: "HUP: the old worker's SSE stream is closed cleanly (FIN, no reset) by its graceful timeout",
  },
  { id: 'sse-hup-reconnect', title: 'HUP: EventSource reconnects to the new generation' },
  { id: 'ws-hup-1001', title: 'HUP: the old WebSocket is closed with 1001 (going away)' },
  { id: 'ws-hup-reconnect', title: 'HUP: a reconnecting WebSocket reaches the new generation' },
  { id: 'hup-zero-failed', title: 'HUP under keep-alive load: 0 failed requests' },
  { id: 'term-in-flight', title: 'TERM: an in-flight request finishes' },
  { id: 'term-exit', title: 'TERM: the master exits 0 (nothing in the app holds a worker)' },
  { id: 'recycle-zero-failed', title: '`--max-requests` recycling under load: 0 failed requests' },
  { id: 'https-scheme', title: "corral's own TLS (HTTP/1.1): the app sees https" },
  { id: 'h2-page', title: 'HTTP/2 over TLS: the page' },
  { id: 'h2-big', title: 'HTTP/2 over TLS: the 10 MiB response' },
  { id: 'h2-upload', title: 'HTTP/2 over TLS: a 10 MiB upload' },
  { id: 'h2-not-found', title: "HTTP/2 over TLS: the framework's 404" },
] as const satisfies readonly Case[]

export type CaseId = (typeof CASES)[number]['id']

/** The cases that need Node's http2 compatibility API (not applicable where Framework.h2 is false). */
export const H2_CASES: readonly CaseId[] = ['h2-page', 'h2-big', 'h2-upload', 'h2-not-found']

/**
 * Names a framework's `notApplicable` may use for several cases at once,
 * besides a case id: what a framework lacks is usually a feature, not a case.
 */
const CASE_GROUPS: Readonly<Record<string, readonly CaseId[]>> = {
  h2: H2_CASES,
  compression: ['compression'],
  multipart: ['multipart'],
  sse: ['sse-first-event', 'sse-flow', 'sse-hup-stays-up', 'sse-hup-ends-cleanly', 'sse-hup-reconnect'],
  ws: ['ws-echo', 'ws-hup-1001', 'ws-hup-reconnect'],
  throw: ['throw-500', 'throw-keeps-serving'],
}

/** The cases a `notApplicable` key stands for: a group's, or the one case it names (none for an unknown key). */
export function casesNamed(key: string): readonly CaseId[] {
  return CASE_GROUPS[key] ?? CASES.filter((c) => c.id === key).map((c) => c.id)
}
