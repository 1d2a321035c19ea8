// gunicorn's --access-logformat, compiled once into a function.
//
// A format is text with atoms written `%(NAME)s`, as in Python's %-formatting
// (`%%` is a literal percent). parseAccessLogFormat checks it (the settings
// registry calls it, so a bad format is one line and exit 2);
// compileAccessLog turns it into a function whose body is the format's
// literals and atom expressions concatenated, built with `new Function` at
// startup: a request costs one string concatenation, no parsing, no lookup
// of which atoms are used.
import type { IncomingMessage, ServerResponse } from 'node:http'

export const DEFAULT_ACCESS_LOG_FORMAT = '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s"'

/** Each atom gunicorn documents, with the key it gets in a JSON line. */
const ATOMS = {
  h: 'remote_addr',
  l: 'ident',
  u: 'user',
  t: 'time',
  r: 'request',
  m: 'method',
  U: 'path',
  q: 'query',
  H: 'protocol',
  s: 'status',
  B: 'bytes',
  b: 'bytes',
  f: 'referer',
  a: 'user_agent',
  T: 'request_time_s',
  M: 'request_time_ms',
  D: 'request_time_us',
  L: 'request_time',
  p: 'pid',
} as const
type SimpleAtom = keyof typeof ATOMS

export type Part =
  | { readonly kind: 'text'; readonly text: string }
  | { readonly kind: 'atom'; readonly atom: SimpleAtom }
  /** `{name}i` a request header, `{name}o` a response header, `{name}e` an environment variable. */
  | { readonly kind: 'header-in' | 'header-out' | 'env'; readonly name: string }

const ATOM_LIST = `${Object.keys(ATOMS).join(' ')} {header}i {header}o {var}e`

const ATOM = /%\(([^)]*)\)(.?)|%%/g
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/

/** The parts of a format, or the reason it is not one. */
export function parseAccessLogFormat(format: string): Part[] | string {
  const parts: Part[] = []
  let text = ''
  let last = 0
  for (const m of format.matchAll(ATOM)) {
    text += format.slice(last, m.index)
    last = m.index + m[0].length
    if (m[0] === '%%') {
      text += '%'
      continue
    }
    const name = m[1]!
    if (m[2] !== 's') return `${m[0]}: write atoms as %(NAME)s`
    const part = atomPart(name)
    if (part === undefined) return `unknown atom %(${name})s (atoms: ${ATOM_LIST})`
    if (text) parts.push({ kind: 'text', text })
    text = ''
    parts.push(part)
  }
  text += format.slice(last)
  if (text) parts.push({ kind: 'text', text })
  return parts
}

function atomPart(name: string): Part | undefined {
  if (Object.hasOwn(ATOMS, name)) return { kind: 'atom', atom: name as SimpleAtom }
  const m = /^\{([^}]+)\}([ioe])$/.exec(name)
  if (!m) return undefined
  const key = m[1]!
  if (m[2] === 'e') return /^[^=\0]+$/.test(key) ? { kind: 'env', name: key } : undefined
  // Header names are matched case-insensitively, as gunicorn does.
  if (!TOKEN.test(key)) return undefined
  return { kind: m[2] === 'i' ? 'header-in' : 'header-out', name: key.toLowerCase() }
}

/**
 * Formats one request: `ms` is the time from its arrival to the end of its
 * response, `bytes` the body bytes sent (0 for a HEAD response or a 204/304).
 */
export type FormatLine = (req: IncomingMessage, res: ServerResponse, ms: number, bytes: number) => string

export interface CompiledFormat {
  /** One whole line, newline included. */
  readonly format: FormatLine
  /** Whether any atom needs the body's byte count (B, b): only then are bytes counted. */
  readonly needsBytes: boolean
}

// ---------------------------------------------------------------------------
// What each atom reads. Kept out of the generated code so it stays short and
// every helper is an ordinary, optimisable function.

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec']
const pad = (n: number, width = 2) => String(n).padStart(width, '0')

/** `[27/Nov/2026:02:04:11 +0000]`, Apache's common log format time, in local time. */
function clfTime(d: Date): string {
  const offset = -d.getTimezoneOffset()
  const abs = Math.abs(offset)
  return (
    `[${pad(d.getDate())}/${MONTHS[d.getMonth()]}/${d.getFullYear()}:` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())} ` +
    `${offset < 0 ? '-' : '+'}${pad(Math.floor(abs / 60))}${pad(abs % 60)}]`
  )
}

// Only these need escaping in a JSON string (header values and URLs are
// Latin-1 in node:http, so no lone surrogates); most values need none, and a
// regex test is cheaper than JSON.stringify.
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are exactly what needs escaping
const NEEDS_ESCAPE = /["\\\u0000-\u001f\u007f]/
const quote = (v: string): string => (NEEDS_ESCAPE.test(v) ? JSON.stringify(v) : `"${v}"`)

function helpers() {
  // The time only changes once a second: format it once per second.
  let second = -1
  let clf = ''
  let iso = ''
  const refresh = () => {
    const now = Date.now()
    const s = Math.floor(now / 1000)
    if (s !== second) {
      second = s
      const d = new Date(s * 1000)
      clf = clfTime(d)
      iso = d.toISOString().replace('.000Z', 'Z')
    }
  }
  const str = (v: unknown): string | undefined =>
    v === undefined ? undefined : Array.isArray(v) ? v.join(', ') : String(v)
  return {
    clf: () => {
      refresh()
      return clf
    },
    iso: () => {
      refresh()
      return iso
    },
    pid: `<${process.pid}>`,
    h: (req: IncomingMessage) => req.socket.remoteAddress,
    /** The user of a Basic Authorization header, as gunicorn reports it. */
    u: (req: IncomingMessage): string | undefined => {
      const auth = req.headers.authorization
      if (auth === undefined || auth.length < 7 || auth.slice(0, 6).toLowerCase() !== 'basic ') return undefined
      const decoded = Buffer.from(auth.slice(6).trim(), 'base64').toString('utf8')
      const colon = decoded.indexOf(':')
      return colon < 0 ? undefined : decoded.slice(0, colon)
    },
    U: (req: IncomingMessage) => {
      const url = req.url ?? ''
      const q = url.indexOf('?')
      return q < 0 ? url : url.slice(0, q)
    },
    q: (req: IncomingMessage) => {
      const url = req.url ?? ''
      const q = url.indexOf('?')
      return q < 0 ? '' : url.slice(q + 1)
    },
    in: (req: IncomingMessage, name: string) => str(req.headers[name]),
    out: (res: ServerResponse, name: string) => str(res.getHeader(name)),
    env: (name: string) => process.env[name],
    /** gunicorn's L: seconds with six decimals. */
    L: (ms: number) => (ms / 1000).toFixed(6),
    dash: (v: string | undefined) => (v === undefined || v === '' ? '-' : v),
    json: (v: string | undefined) => (v === undefined ? 'null' : quote(v)),
    quote,
  }
}

/** The expression for a part, as text (`dash(...)`) or as a JSON value. */
function expression(part: Exclude<Part, { kind: 'text' }>, json: boolean): string {
  const text = (e: string) => (json ? `H.json(${e})` : `H.dash(${e})`)
  const raw = (e: string) => (json ? `H.quote(${e})` : e)
  switch (part.kind) {
    case 'header-in':
      return text(`H.in(req, ${JSON.stringify(part.name)})`)
    case 'header-out':
      return text(`H.out(res, ${JSON.stringify(part.name)})`)
    case 'env':
      return text(`H.env(${JSON.stringify(part.name)})`)
  }
  switch (part.atom) {
    case 'h':
      return text('H.h(req)')
    case 'l':
      return json ? 'null' : '"-"'
    case 'u':
      return text('H.u(req)')
    case 't':
      return json ? '"\\"" + H.iso() + "\\""' : 'H.clf()'
    case 'r':
      return raw('req.method + " " + req.url + " HTTP/" + req.httpVersion')
    case 'm':
      return raw('req.method')
    case 'U':
      return raw('H.U(req)')
    case 'q':
      return raw('H.q(req)')
    case 'H':
      return raw('"HTTP/" + req.httpVersion')
    case 's':
      return 'res.statusCode'
    case 'B':
      return 'bytes'
    case 'b':
      return json ? 'bytes' : '(bytes === 0 ? "-" : bytes)'
    case 'f':
      return text('req.headers.referer')
    case 'a':
      return text('req.headers["user-agent"]')
    case 'T':
      return 'Math.floor(ms / 1000)'
    case 'M':
      return 'Math.floor(ms)'
    case 'D':
      return 'Math.floor(ms * 1000)'
    case 'L':
      return json ? 'Number(H.L(ms))' : 'H.L(ms)'
    case 'p':
      return json ? String(process.pid) : 'H.pid'
  }
}

/** The key an atom has in a JSON line. */
function jsonKey(part: Exclude<Part, { kind: 'text' }>): string {
  switch (part.kind) {
    case 'header-in':
      return `req.${part.name}`
    case 'header-out':
      return `res.${part.name}`
    case 'env':
      return `env.${part.name}`
    case 'atom':
      return ATOMS[part.atom]
  }
}

/**
 * Compiles a format (already checked by parseAccessLogFormat) into a line
 * formatter. With `json`, the line is a JSON object with one key per atom
 * (see ATOMS; `req.NAME`, `res.NAME`, `env.NAME` for the braced ones) and the
 * format's literal text is left out; absent values are null.
 */
export function compileAccessLog(format: string, { json = false } = {}): CompiledFormat {
  const parts = parseAccessLogFormat(format)
  if (typeof parts === 'string') throw new Error(`--access-logformat: ${parts}`)
  const pieces: string[] = []
  if (json) {
    const seen = new Set<string>()
    for (const part of parts) {
      if (part.kind === 'text') continue
      const key = jsonKey(part)
      if (seen.has(key)) continue
      seen.add(key)
      pieces.push(JSON.stringify(`${seen.size === 1 ? '{' : ','}${JSON.stringify(key)}:`), expression(part, true))
    }
    pieces.push(JSON.stringify(seen.size === 0 ? '{}\n' : '}\n'))
  } else {
    for (const part of parts) pieces.push(part.kind === 'text' ? JSON.stringify(part.text) : expression(part, false))
    pieces.push('"\\n"')
  }
  // The body is built only from JSON-quoted literals, the fixed expressions
  // above, and header or variable names JSON-quoted: nothing from the format
  // reaches it unquoted.
  const make = new Function(
    'H',
    `return function accessLogLine(req, res, ms, bytes) { return "" + ${pieces.join(' + ')} }`,
  ) as (h: ReturnType<typeof helpers>) => FormatLine
  const needsBytes = parts.some((p) => p.kind === 'atom' && (p.atom === 'B' || p.atom === 'b'))
  return { format: make(helpers()), needsBytes }
}
