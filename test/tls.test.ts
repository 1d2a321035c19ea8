// HTTPS end to end: real masters and workers, certificates made by openssl
// for each run, Node's https client and curl. The served certificate is
// checked by its fingerprint, a renewal is picked up by HUP, client
// certificates are asked for as --cert-reqs says, --ciphers is applied, and
// bad TLS settings stop corral at start with one line naming the setting.
import { execFile } from 'node:child_process'
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { request } from 'node:https'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { TLSSocket } from 'node:tls'
import { afterEach, describe, expect, it } from 'vitest'
import { fixture, freePort, isAlive, killAll, startCorral, waitFor, type Corral } from './helpers/corral.ts'
import { certsForTests } from './helpers/tls-certs.ts'
import { checkTlsSettings } from '../src/http/tls.ts'

const APP = fixture('app-listener-info.ts')
const env = { ...process.env }
delete env['WEB_CONCURRENCY']
delete env['CORRAL_CMD_ARGS']

const pki = certsForTests()
afterEach(killAll)

interface Answer {
  status: number
  pid: number
  version: string
  fingerprint: string
  alpn: string | false | null
  cipher: string
}

interface ClientOptions {
  ca?: string
  cert?: string
  key?: string
  maxVersion?: 'TLSv1.2' | 'TLSv1.3'
  ciphers?: string
}

/** One HTTPS GET on a new connection, trusting only `ca`. */
function httpsGet(port: number, o: ClientOptions = {}): Promise<Answer> {
  const read = (f: string | undefined) => (f === undefined ? undefined : readText(f))
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path: '/',
        agent: false,
        timeout: 5000,
        ca: read(o.ca ?? pki.certs.ca),
        cert: read(o.cert),
        key: read(o.key),
        ...(o.maxVersion && { maxVersion: o.maxVersion }),
        ...(o.ciphers && { ciphers: o.ciphers }),
      },
      (res) => {
        const socket = res.socket as TLSSocket
        const seen = {
          fingerprint: socket.getPeerCertificate().fingerprint256,
          alpn: socket.alpnProtocol,
          cipher: socket.getCipher().name,
        }
        let body = ''
        res.setEncoding('utf8')
        res.on('data', (c: string) => (body += c))
        res.on('end', () => {
          const info = JSON.parse(body) as { pid: number; version: string }
          resolve({ status: res.statusCode ?? 0, pid: info.pid, version: info.version, ...seen })
        })
      },
    )
    req.on('timeout', () => req.destroy(new Error('request timed out')))
    req.on('error', reject)
    req.end()
  })
}

const readText = (f: string) => readFileSync(f, 'utf8')

/** curl's exit code, what it printed, and what it said on stderr. */
function curl(args: string[]): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve) => {
    execFile('curl', ['-sS', '--max-time', '5', ...args], (error, out, err) => {
      resolve({ code: error ? Number((error as { code?: number }).code ?? 1) : 0, out, err })
    })
  })
}

async function hup(c: Corral): Promise<string> {
  const from = c.log().length
  c.signal('SIGHUP')
  const m = await c.waitForLog(/Reload (complete: generation \d+ is serving|abandoned[^\n]*|not started: [^\n]*)/, {
    from,
  })
  return m[0]
}

function tls(port: number, extra: string[] = [], cert = pki.certs.serverCert, key = pki.certs.serverKey): string[] {
  return ['-w', '1', '-b', `127.0.0.1:${port}`, '--certfile', cert, '--keyfile', key, ...extra, APP]
}

describe('HTTPS', () => {
  it('serves the certificate given, to Node and curl, HTTP/1.1 only by default; a renewed one after HUP, no restart', async ({
    signal,
  }) => {
    const dir = mkdtempSync(join(tmpdir(), 'corral-renew-'))
    try {
      // The files the operator renews in place.
      const cert = join(dir, 'live.pem')
      const key = join(dir, 'live.key')
      copyFileSync(pki.certs.serverCert, cert)
      copyFileSync(pki.certs.serverKey, key)
      const port = await freePort()
      const c = startCorral(tls(port, [], cert, key), { env, signal })
      await c.untilReady()
      expect(c.log()).toContain(`Listening at: https://127.0.0.1:${port}`)

      const first = await httpsGet(port)
      expect(first.status).toBe(200)
      expect(first.fingerprint).toBe(pki.certs.fingerprint(pki.certs.serverCert))
      const viaCurl = await curl([
        '--cacert',
        pki.certs.ca,
        '--http2',
        '-w',
        '\n%{http_version}',
        `https://127.0.0.1:${port}/`,
      ])
      expect(viaCurl.code).toBe(0)
      const [json, version] = viaCurl.out.split('\n')
      expect(JSON.parse(json!)).toMatchObject({ pid: first.pid, encrypted: true, version: '1.1' })
      expect(version).toBe('1.1') // h2 is served only with --http-protocols h2
      // Plain HTTP on the TLS port gets no HTTP answer.
      expect((await curl([`http://127.0.0.1:${port}/`])).code).not.toBe(0)

      // Renewal: new files at the same paths, then HUP.
      copyFileSync(pki.certs.renewedCert, cert)
      copyFileSync(pki.certs.renewedKey, key)
      expect(await hup(c)).toMatch(/Reload complete/)
      await waitFor(() => !isAlive(first.pid), { what: 'the old worker to exit' })
      const renewed = await httpsGet(port)
      expect(renewed.fingerprint).toBe(pki.certs.fingerprint(pki.certs.renewedCert))
      expect(renewed.fingerprint).not.toBe(first.fingerprint)
      expect(renewed.pid).not.toBe(first.pid)
      expect(c.pid).toBe(c.child.pid) // the same master throughout

      // A broken renewal is refused before any new worker starts, with the start's reason; the running ones keep serving.
      writeFileSync(cert, 'not a certificate\n')
      expect(await hup(c)).toMatch(/^Reload not started: --certfile: \S+live\.pem holds no PEM certificate$/)
      expect(c.log()).not.toMatch(/Reloading: starting worker generation 2/)
      const still = await httpsGet(port)
      expect(still).toMatchObject({ status: 200, pid: renewed.pid, fingerprint: renewed.fingerprint })

      c.signal('SIGTERM')
      expect((await c.exited).code).toBe(0)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it('bad TLS settings stop corral at start: exit 2, one line naming the setting, no stack', async ({ signal }) => {
    const missing = join(pki.certs.dir, 'missing.pem')
    const cases: [string[], RegExp][] = [
      [
        ['--certfile', missing, '--keyfile', pki.certs.serverKey],
        /^corral: error: --certfile: can't read \S+missing\.pem \(no such file\)$/m,
      ],
      [
        ['--certfile', pki.certs.serverCert, '--keyfile', pki.certs.renewedKey],
        /^corral: error: --keyfile: the key in \S+ does not belong to the certificate in \S+server\.pem \(key values mismatch\)$/m,
      ],
      [['--http-protocols', 'h2'], /^corral: error: --http-protocols: h2 needs TLS: give --certfile and --keyfile/m],
    ]
    const port = await freePort()
    const results = await Promise.all(
      cases.map(async ([args]) => {
        const c = startCorral(['-w', '1', '-b', `127.0.0.1:${port}`, ...args, APP], { env, signal })
        return { exit: await c.exited, log: c.log() }
      }),
    )
    results.forEach(({ exit, log }, i) => {
      const [args, line] = cases[i]!
      expect(exit.code, `${args.join(' ')}:\n${log}`).toBe(2)
      expect(log, args.join(' ')).toMatch(line)
      expect(log).not.toMatch(/^\s+at /m)
      expect(log).not.toMatch(/Listening at/) // nothing was bound
    })
  })

  it('each TLS problem is one line naming its setting (checkTlsSettings, as the master runs it at start)', () => {
    const missing = join(pki.certs.dir, 'missing.pem')
    const base = { certReqs: 0, httpProtocols: 'h1' }
    const withCert = { ...base, certfile: pki.certs.serverCert, keyfile: pki.certs.serverKey }
    const cases: [Parameters<typeof checkTlsSettings>[0], string[]][] = [
      [base, []],
      [withCert, []],
      [{ ...withCert, httpProtocols: 'h2,h1', certReqs: 2, caCerts: pki.certs.ca, ciphers: 'ECDHE+AESGCM' }, []],
      [{ ...base, certfile: join(pki.certs.dir, 'server-with-key.pem') }, []],
      [{ ...withCert, certfile: missing }, [`--certfile: can't read ${missing} (no such file)`]],
      [{ ...withCert, keyfile: missing }, [`--keyfile: can't read ${missing} (no such file)`]],
      [
        { ...withCert, keyfile: pki.certs.renewedKey },
        [
          `--keyfile: the key in ${pki.certs.renewedKey} does not belong to the certificate in ${pki.certs.serverCert} (key values mismatch)`,
        ],
      ],
      [{ ...withCert, certfile: pki.certs.serverKey }, [`--certfile: ${pki.certs.serverKey} holds no PEM certificate`]],
      [{ ...withCert, keyfile: pki.certs.serverCert }, [`--keyfile: ${pki.certs.serverCert} holds no PEM private key`]],
      [
        { ...base, certfile: pki.certs.serverCert },
        [`--keyfile: missing: ${pki.certs.serverCert} holds no private key, so give the key file`],
      ],
      [{ ...base, keyfile: pki.certs.serverKey }, ['--keyfile: needs --certfile, the certificate the key belongs to']],
      [{ ...withCert, caCerts: missing }, [`--ca-certs: can't read ${missing} (no such file)`]],
      [{ ...withCert, caCerts: pki.certs.serverKey }, [`--ca-certs: ${pki.certs.serverKey} holds no PEM certificate`]],
      [{ ...withCert, ciphers: 'NO-SUCH-CIPHER' }, ['--ciphers: "NO-SUCH-CIPHER": no cipher match']],
      [
        { ...base, certReqs: 2 },
        ['--cert-reqs: needs --certfile and --keyfile (without them nothing is served over TLS)'],
      ],
      [
        { ...base, caCerts: pki.certs.ca },
        ['--ca-certs: needs --certfile and --keyfile (without them nothing is served over TLS)'],
      ],
      [
        { ...base, ciphers: 'HIGH' },
        ['--ciphers: needs --certfile and --keyfile (without them nothing is served over TLS)'],
      ],
      [
        { ...base, httpProtocols: 'h2' },
        [
          '--http-protocols: h2 needs TLS: give --certfile and --keyfile (clients speak HTTP/2 over TLS, chosen by ALPN)',
        ],
      ],
      [
        { ...withCert, httpProtocols: 'h1,h3' },
        ['--http-protocols: h3 is not served (HTTP/3 runs over QUIC, which node:http does not serve)'],
      ],
      [{ ...withCert, httpProtocols: 'h1,h9' }, ['--http-protocols: unknown protocol "h9" (expected h1 or h2)']],
      [{ ...withCert, httpProtocols: 'h1,h1' }, ['--http-protocols: "h1,h1" names a protocol twice']],
      [{ ...withCert, httpProtocols: '' }, ['--http-protocols: expected h1, h2 or both, comma-separated, got ""']],
    ]
    writeFileSync(
      join(pki.certs.dir, 'server-with-key.pem'),
      readText(pki.certs.serverCert) + readText(pki.certs.serverKey),
    )
    for (const [settings, problems] of cases)
      expect(checkTlsSettings(settings), JSON.stringify(settings)).toEqual(problems)
  })

  it('--cert-reqs 2 admits only clients with a certificate from --ca-certs; 1 also admits clients with none', async ({
    signal,
  }) => {
    const [required, optional] = [await freePort(), await freePort()]
    const a = startCorral(tls(required, ['--cert-reqs', '2', '--ca-certs', pki.certs.ca]), { env, signal })
    const b = startCorral(tls(optional, ['--cert-reqs', '1', '--ca-certs', pki.certs.ca]), { env, signal })
    await Promise.all([a, b].map((c) => c.untilReady()))
    const client = { cert: pki.certs.clientCert, key: pki.certs.clientKey }
    const rogue = { cert: pki.certs.rogueCert, key: pki.certs.rogueKey }

    expect((await httpsGet(required, client)).status).toBe(200)
    await expect(httpsGet(required)).rejects.toThrow()
    await expect(httpsGet(required, rogue)).rejects.toThrow()
    const viaCurl = await curl([
      '--cacert',
      pki.certs.ca,
      '--cert',
      pki.certs.clientCert,
      '--key',
      pki.certs.clientKey,
      `https://127.0.0.1:${required}/`,
    ])
    expect(viaCurl.code).toBe(0)
    expect(JSON.parse(viaCurl.out)).toMatchObject({ encrypted: true })
    expect((await curl(['--cacert', pki.certs.ca, `https://127.0.0.1:${required}/`])).code).not.toBe(0)

    expect((await httpsGet(optional, client)).status).toBe(200)
    expect((await httpsGet(optional)).status).toBe(200)
    await expect(httpsGet(optional, rogue)).rejects.toThrow()
    // TLS 1.2 too, where the client's certificate comes before the handshake ends.
    expect((await httpsGet(optional, { ...client, maxVersion: 'TLSv1.2' })).status).toBe(200)
    await expect(httpsGet(optional, { ...rogue, maxVersion: 'TLSv1.2' })).rejects.toThrow()
  })

  it('--ciphers restricts the TLS 1.2 cipher suites', async ({ signal }) => {
    const [limited, open] = [await freePort(), await freePort()]
    const a = startCorral(tls(limited, ['--ciphers', 'ECDHE-ECDSA-AES128-GCM-SHA256']), { env, signal })
    const b = startCorral(tls(open), { env, signal })
    await Promise.all([a, b].map((c) => c.untilReady()))
    const tls12 = { maxVersion: 'TLSv1.2' as const }
    expect((await httpsGet(limited, tls12)).cipher).toBe('ECDHE-ECDSA-AES128-GCM-SHA256')
    const aes256 = { ...tls12, ciphers: 'ECDHE-ECDSA-AES256-GCM-SHA384' }
    await expect(httpsGet(limited, aes256)).rejects.toThrow(/handshake failure|no shared cipher/i)
    expect((await httpsGet(open, aes256)).cipher).toBe('ECDHE-ECDSA-AES256-GCM-SHA384')
  })
})
