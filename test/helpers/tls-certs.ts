// Certificates made with the real openssl at test time, in a temp dir: a CA,
// two server certificates it signed (the second plays a renewal), a client
// certificate it signed, and a self-signed client certificate it did not.
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll } from 'vitest'

export interface Certs {
  dir: string
  ca: string
  serverCert: string
  serverKey: string
  /** The renewal: another key and certificate for the same names, from the same CA. */
  renewedCert: string
  renewedKey: string
  clientCert: string
  clientKey: string
  /** Self-signed: no --ca-certs vouches for it. */
  rogueCert: string
  rogueKey: string
  /** SHA-256 fingerprint as Node prints it (AB:CD:…), per certificate file. */
  fingerprint(certFile: string): string
  remove(): void
}

const openssl = (args: string[], cwd: string) =>
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] }).toString()

export function hasOpenssl(): boolean {
  try {
    openssl(['version'], tmpdir())
    return true
  } catch {
    return false
  }
}

export function makeCerts(): Certs {
  const dir = mkdtempSync(join(tmpdir(), 'corral-tls-'))
  const key = (name: string) =>
    openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', name], dir)
  key('ca.key')
  openssl(
    ['req', '-x509', '-new', '-key', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=corral test CA'],
    dir,
  )
  writeFileSync(
    join(dir, 'server.ext'),
    'subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost\nextendedKeyUsage=serverAuth\n',
  )
  writeFileSync(join(dir, 'client.ext'), 'extendedKeyUsage=clientAuth\n')
  const signed = (name: string, cn: string, ext: string) => {
    key(`${name}.key`)
    openssl(['req', '-new', '-key', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`], dir)
    openssl(
      [
        'x509',
        '-req',
        '-in',
        `${name}.csr`,
        '-CA',
        'ca.pem',
        '-CAkey',
        'ca.key',
        '-CAcreateserial',
        '-out',
        `${name}.pem`,
        '-days',
        '2',
        '-extfile',
        ext,
      ],
      dir,
    )
  }
  signed('server', 'localhost', 'server.ext')
  signed('renewed', 'localhost', 'server.ext')
  signed('client', 'corral test client', 'client.ext')
  key('rogue.key')
  openssl(
    ['req', '-x509', '-new', '-key', 'rogue.key', '-out', 'rogue.pem', '-days', '2', '-subj', '/CN=rogue client'],
    dir,
  )
  const at = (f: string) => join(dir, f)
  return {
    dir,
    ca: at('ca.pem'),
    serverCert: at('server.pem'),
    serverKey: at('server.key'),
    renewedCert: at('renewed.pem'),
    renewedKey: at('renewed.key'),
    clientCert: at('client.pem'),
    clientKey: at('client.key'),
    rogueCert: at('rogue.pem'),
    rogueKey: at('rogue.key'),
    fingerprint: (certFile) =>
      openssl(['x509', '-noout', '-fingerprint', '-sha256', '-in', certFile], dir).trim().replace(/^.*=/, ''),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  }
}

const read = (file: string): string => readFileSync(file, 'utf8')

/** A self-signed certificate for localhost, valid a day: `dir`/cert.pem and `dir`/key.pem. */
export function selfSignedCert(dir: string): void {
  openssl(
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-days',
      '1',
      '-subj',
      '/CN=localhost',
    ].concat(['-keyout', `${dir}/key.pem`, '-out', `${dir}/cert.pem`]),
    dir,
  )
}

/**
 * For a test file: certificates made before its tests (failing with the
 * reason when openssl is missing) and removed after them; `caPem` is the CA
 * certificate's text, for clients to trust.
 */
export function certsForTests(): { readonly certs: Certs; readonly caPem: string } {
  let made: { certs: Certs; caPem: string } | undefined
  beforeAll(() => {
    if (!hasOpenssl()) throw new Error('openssl is needed to make test certificates (.ci/run installs it)')
    const certs = makeCerts()
    made = { certs, caPem: read(certs.ca) }
  })
  afterAll(() => made?.certs.remove())
  const open = () => {
    if (made === undefined) throw new Error('the certificates are made before the tests (beforeAll)')
    return made
  }
  return {
    get certs() {
      return open().certs
    },
    get caPem() {
      return open().caPem
    },
  }
}
