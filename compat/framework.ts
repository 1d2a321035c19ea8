// The contract between the framework compatibility grid's harness
// (compat/harness/) and the apps it runs (compat/frameworks/<id>.ts): each
// framework module default-exports one Framework, and every app answers the
// same routes, so one battery of cases runs against all of them.
//
// The routes every app serves (a case whose route a framework cannot offer
// names the case in `notApplicable`, with why):
//   GET  /                 200 text/plain (or html) containing `hello from <id>`
//   GET  /missing-page     the framework's own 404
//   HEAD /                 as GET /, without a body
//   GET  /big              10 MiB (10 * 1024 * 1024 bytes of 'x'), streamed, not buffered in one string
//   GET  /text             ~64 KiB of compressible text; compressed when the request asks (Accept-Encoding)
//                          and the framework offers compression (else notApplicable.compression)
//   POST /upload           reads the whole body (chunked or not) and answers JSON {"bytes": N, "sha256": "<hex>"}
//   POST /multipart        multipart/form-data: JSON {"fields": {name: value}, "files": {field: bytes}}
//   GET  /throw            the handler throws (synchronously, or the framework's idiom for it): expect a 5xx
//   GET  /slow?ms=N        answers `slow done` after N ms (an in-flight request through TERM)
//   GET  /pid              text: the worker's process.pid (which worker or generation served)
//   GET  /whoami           JSON {"ip": client address as the framework sees it, "protocol": "http"|"https", "pid"}
//   GET  /sse              text/event-stream: `data: <pid>` at once, then every 200 ms
//   WS   /ws               WebSocket: sends `<pid>` on open, then echoes every message
//   (HTTP/2 over TLS: the same routes, when `h2` is true.)
export interface Framework {
  /** Short id, used in file names and `hello from <id>`: 'express5'. */
  readonly id: string
  /** The grid's column header, without the version: 'Express 5'. */
  readonly title: string
  /** The package whose installed version heads the column: 'express'. */
  readonly versionOf: string
  /** npm dependencies of the scratch app: name -> version range. */
  readonly dependencies: Readonly<Record<string, string>>
  readonly devDependencies?: Readonly<Record<string, string>>
  /** Files written into the scratch app: path relative to the app -> content. */
  readonly files: Readonly<Record<string, string>>
  /** The production build, run in the app's directory (argv), where the framework has one. */
  readonly build?: readonly string[]
  /** What `corral` is given as APP, relative to the app's directory: 'server.js', 'build/index.js', 'app.js:app'. */
  readonly entry: string
  /** Extra corral arguments (never a bind: the harness chooses it). */
  readonly corralArgs?: readonly string[]
  /** Extra environment for corral and its workers. */
  readonly env?: Readonly<Record<string, string>>
  /** The app calls listen() itself (served through corral's listeners) rather than exporting a handler. */
  readonly listensItself: boolean
  /** The app can be served over HTTP/2 with TLS (Node's http2 compatibility API). */
  readonly h2: boolean
  /**
   * Cases that do not apply, each with the reason shown under the grid: a case
   * id from compat/harness/cases.ts, or a group of them (CASE_GROUPS there:
   * h2, compression, multipart, sse, ws, throw). A key that names neither stops the grid.
   */
  readonly notApplicable?: Readonly<Record<string, string>>
  /** What a user of this framework must know under corral (a limit and what to do about it), shown under the grid. */
  readonly notes?: readonly string[]
}
