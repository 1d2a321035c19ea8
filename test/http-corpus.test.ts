// gunicorn's own request-parser corpus (test/corpus/http-requests/, 137
// cases) against a real corral worker serving test/fixtures/app-echo.ts: each
// case's bytes on a fresh connection, then the answer compared with what
// gunicorn does. Where corral decides otherwise, DIFFERENCES says what corral
// does and why (spec/http-conformance.md has the same list, with the RFCs).
// Cases are grouped by the settings they need, one corral per group.
import { readFileSync } from 'node:fs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ROOT, fixture, freePort, killAll, startCorral, type Corral } from './helpers/corral.ts'
import { exchange, goodRequest, parseResponses } from './helpers/http-wire.ts'

const CORPUS = `${ROOT}test/corpus/http-requests/`

interface CorpusRequest {
  method: string
  target: string
  version: [number, number]
  headers: [string, string][]
  trailers: [string, string][]
  body_length: number
  body_sha256: string
  keep_alive: boolean
}
interface Case {
  name: string
  file: string
  expect: 'accept' | 'reject' | 'incomplete'
  error: string | null
  settings: Record<string, unknown>
  requests: CorpusRequest[]
}
interface Echo {
  pid: number
  method: string
  url: string
  version: string
  headers: [string, string][]
  trailers: [string, string][]
  bodyLength: number
  bodySha256: string
}

const manifest = JSON.parse(readFileSync(`${CORPUS}manifest.json`, 'utf8')) as Case[]

/** gunicorn settings corral has, and its flag for each. */
const FLAGS: Record<string, string> = {
  limit_request_line: '--limit-request-line',
  limit_request_fields: '--limit-request-fields',
  limit_request_field_size: '--limit-request-field_size',
  forwarded_allow_ips: '--forwarded-allow-ips',
  proxy_protocol: '--proxy-protocol',
}
// The others the corpus uses have no corral counterpart: strip_header_spaces,
// header_map, permit_unconventional_http_method, casefold_http_method,
// permit_obsolete_folding (node:http's parser has no such leniencies, and
// corral adds none). Those cases run with the defaults; where the outcome
// differs, DIFFERENCES pins it.

const NO_HOST = 'HTTP/1.1 without Host: RFC 9112 §3.2 says a server MUST answer 400 (node:http requireHostHeader)'

/** Where corral does not do what gunicorn does, keyed by case. */
type Difference =
  /** corral answers with exactly these statuses, in order, then closes ([] = closed without an answer). */
  | { corral: 'reject'; statuses: number[]; why: string }
  /** corral serves it; `headers` replaces the expected header list. */
  | { corral: 'accept'; why: string; headers?: [string, string][] }

const DIFFERENCES: Record<string, Difference> = {
  'valid/004': { corral: 'reject', statuses: [400], why: NO_HOST },
  'valid/005': { corral: 'reject', statuses: [400], why: NO_HOST },
  'valid/006': { corral: 'reject', statuses: [400], why: NO_HOST },
  'valid/007': { corral: 'reject', statuses: [400], why: NO_HOST },
  'valid/009': {
    corral: 'reject',
    statuses: [400],
    why: `Transfer-Encoding with Content-Length: RFC 9112 §6.1 lets a server reject it and says close after; a smuggling shape (also ${NO_HOST})`,
  },
  'valid/010': { corral: 'reject', statuses: [400], why: NO_HOST },
  'valid/011': { corral: 'reject', statuses: [400], why: NO_HOST },
  'valid/012': { corral: 'reject', statuses: [400], why: NO_HOST },
  'valid/013': {
    corral: 'reject',
    statuses: [400],
    why: `${NO_HOST}; with Host, llhttp still refuses whitespace around ';' in chunk extensions, which RFC 9112 §7.1.1 allows (BWS)`,
  },
  'valid/014': { corral: 'reject', statuses: [400], why: NO_HOST },
  'valid/018': { corral: 'reject', statuses: [400], why: NO_HOST },
  'valid/021': { corral: 'reject', statuses: [400], why: NO_HOST },
  'valid/022': {
    corral: 'reject',
    statuses: [200, 400],
    why: `the HTTP/1.0 request is served; the pipelined one is ${NO_HOST}`,
  },
  'valid/023': { corral: 'reject', statuses: [400], why: NO_HOST },
  'valid/025': { corral: 'reject', statuses: [400], why: NO_HOST },
  'valid/025_line': { corral: 'reject', statuses: [400], why: NO_HOST },
  'valid/027': {
    corral: 'reject',
    statuses: [400],
    why: 'non-ASCII bytes in the request-target: not a URI (RFC 9112 §3.2, RFC 3986 §2); 400 as RFC 9112 §3 advises',
  },
  'valid/028': {
    corral: 'reject',
    statuses: [400],
    why: 'whitespace between field name and colon: RFC 9112 §5.1 says a server MUST answer 400 (corral has no strip_header_spaces)',
  },
  'valid/029': { corral: 'reject', statuses: [400], why: NO_HOST },
  'valid/030': { corral: 'reject', statuses: [400], why: NO_HOST },
  'valid/031': {
    corral: 'reject',
    statuses: [400],
    why: 'unregistered method: llhttp parses only the methods in http.METHODS',
  },
  'valid/031compat': {
    corral: 'reject',
    statuses: [400],
    why: 'unregistered method (corral has no permit_unconventional_http_method)',
  },
  'valid/031compat2': {
    corral: 'reject',
    statuses: [400],
    why: 'unregistered method (corral has no permit_unconventional_http_method)',
  },
  'valid/040': {
    corral: 'accept',
    why: "fields with '_' in the name are kept: Node never maps '-' and '_' to the same CGI variable, so gunicorn's reason to drop them does not apply",
    headers: [
      ['TRANSFER_ENCODING', 'tricked'],
      ['CONTENT-LENGTH', '7'],
      ['CONTENT_LENGTH', '-1E23'],
    ],
  },
  'valid/100': { corral: 'reject', statuses: [400], why: NO_HOST },
  'valid/compat_obs_fold': {
    corral: 'reject',
    statuses: [400],
    why: 'obs-fold: RFC 9112 §5.2 lets a server reject it with 400 (corral has no permit_obsolete_folding)',
  },
  'valid/compat_obs_fold_huge': { corral: 'reject', statuses: [400], why: 'obs-fold, as valid/compat_obs_fold' },
  'valid/pp_02': {
    corral: 'reject',
    statuses: [400],
    why: `the PROXY header is read; the request after it is ${NO_HOST}`,
  },
  'valid/rfc9112_target_authority_connect_01': {
    corral: 'reject',
    statuses: [501],
    why: 'CONNECT is for proxies (RFC 9110 §9.3.6); corral serves origin apps',
  },
  'valid/rfc9112_target_authority_ipv6_01': { corral: 'reject', statuses: [501], why: 'CONNECT, as above' },
  'invalid/040': {
    corral: 'accept',
    why: "header_map refuse is not a corral setting; '_' fields are kept (see valid/040)",
    headers: [
      ['TRANSFER_ENCODING', 'tricked'],
      ['CONTENT-LENGTH', '7'],
      ['CONTENT_LENGTH', '-1E23'],
    ],
  },
  'invalid/limit_header_default_01': {
    corral: 'accept',
    why: "--limit-request-field_size 0 means no per-field limit, as gunicorn's documentation says (its parser falls back to 8190); the head stays bounded",
  },
  'invalid/rfc9110_trailer_forbidden_host_01': {
    corral: 'accept',
    why: 'Host in a trailer: node:http keeps trailers apart (req.trailers), never merged into the header section (RFC 9110 §6.5.2), so it cannot reroute the request',
  },
}

/** The status corral answers a case gunicorn rejects with (400 when not listed). */
const REJECT_STATUS: Record<string, number> = {
  'invalid/006': 414,
  'invalid/007': 431,
  'invalid/008': 431,
  'invalid/009': 431,
  'invalid/011': 431,
  'invalid/012': 431,
  'invalid/version_02': 505,
}

function corralArgs(settings: Record<string, unknown>): string[] {
  // A boolean flag (--proxy-protocol) takes no value.
  return Object.entries(settings).flatMap(([k, v]) =>
    FLAGS[k] ? (v === true ? [FLAGS[k]] : [FLAGS[k], String(v)]) : [],
  )
}

const groups = new Map<string, Case[]>()
for (const c of manifest) {
  const key = JSON.stringify(corralArgs(c.settings))
  groups.set(key, [...(groups.get(key) ?? []), c])
}

const upper = (fields: [string, string][]) => fields.map(([n, v]) => [n.toUpperCase(), v])

it('the corpus is all there and every difference names a real case', () => {
  expect(manifest).toHaveLength(137)
  const names = new Set(manifest.map((c) => c.name))
  for (const name of [...Object.keys(DIFFERENCES), ...Object.keys(REJECT_STATUS)]) expect(names).toContain(name)
})

afterAll(killAll)

for (const [key, cases] of groups) {
  const args = JSON.parse(key) as string[]
  describe(`corral ${args.join(' ') || '(defaults)'}`, () => {
    let corral: Corral
    let port: number
    let worker: number | undefined

    beforeAll(async () => {
      port = await freePort()
      corral = startCorral(['-w', '1', '-b', `127.0.0.1:${port}`, ...args, fixture('app-echo.ts')])
      await corral.untilReady()
      worker = corral.workers()[0]
    })

    it.each(cases.map((c) => [c.name, c] as const))('%s', async (_name, c) => {
      const r = await exchange(port, readFileSync(CORPUS + c.file))
      const responses = parseResponses(r.data)
      const statuses = responses.map((x) => x.status)
      const diff = DIFFERENCES[c.name]

      if (c.expect === 'accept' && diff?.corral !== 'reject') {
        // Every request answered 2xx, in order, and nothing after a request that closes.
        expect(statuses).toEqual(c.requests.map(() => 200))
        c.requests.forEach((want, i) => {
          const echo = JSON.parse(responses[i]!.body.toString('utf8')) as Echo
          expect(echo.method).toBe(want.method)
          expect(echo.url).toBe(want.target)
          expect(echo.version).toBe(want.version.join('.'))
          expect(upper(echo.headers)).toEqual(
            upper(diff?.corral === 'accept' && diff.headers ? diff.headers : want.headers),
          )
          expect(upper(echo.trailers)).toEqual(upper(want.trailers))
          expect(echo.bodyLength).toBe(want.body_length)
          expect(echo.bodySha256).toBe(want.body_sha256)
        })
      } else if (diff?.corral === 'accept') {
        // gunicorn rejects it; corral serves it, as the difference says.
        expect(statuses).toEqual([200])
        if (diff.headers)
          expect(upper((JSON.parse(responses[0]!.body.toString('utf8')) as Echo).headers)).toEqual(upper(diff.headers))
      } else {
        const want = diff?.corral === 'reject' ? diff.statuses : [REJECT_STATUS[c.name] ?? 400]
        expect(statuses).toEqual(want)
        // A rejection always ends the connection.
        expect(r.closed).toBe(true)
        if (want.at(-1)! >= 400) expect(responses.at(-1)!.headers['connection']).toBe('close')
      }
    })

    it('the same worker is still serving', async () => {
      const res = await goodRequest(port)
      expect(res?.status).toBe(200)
      expect(corral.workers()).toEqual([worker])
      expect(JSON.parse(res!.body.toString('utf8')).pid).toBe(worker)
      expect(corral.log()).not.toMatch(/Uncaught|Error handling request/)
    })
  })
}
