// The sslContext hook (spec/hooks.md): each TLS worker asks it for the TLS
// options, given corral's defaults; what it returns is what clients see. A
// hook that throws leaves the defaults in force and is logged by name.
import { readFileSync } from 'node:fs'
import { connect } from 'node:tls'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { fixture, freePort, killAll, startCorral } from './helpers/corral.ts'
import { hasOpenssl, makeCerts } from './helpers/tls-certs.ts'

afterEach(killAll)

const certs = hasOpenssl() ? makeCerts() : undefined
afterAll(() => certs?.remove())

function servedFingerprint(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, rejectUnauthorized: false }, () => {
      resolve(socket.getPeerCertificate().fingerprint256)
      socket.end()
    })
    socket.on('error', reject)
  })
}

describe.skipIf(!certs)('sslContext', () => {
  for (const throws of [false, true]) {
    it(
      throws
        ? 'a hook that throws leaves the defaults and is logged'
        : 'runs in each worker and its options are served',
      async ({ signal }) => {
        const c = certs!
        const log = `${c.dir}/hooks-${throws}.jsonl`
        const port = await freePort()
        const corral = startCorral(
          [
            '-c',
            fixture('hooks-ssl-context.config.ts'),
            '-w',
            '2',
            '-b',
            `127.0.0.1:${port}`,
            '--certfile',
            c.serverCert,
            '--keyfile',
            c.serverKey,
            fixture('app-pid.ts'),
          ],
          {
            env: { HOOKS_LOG: log, SSL_CERT: c.renewedCert, SSL_KEY: c.renewedKey, SSL_THROW: throws ? '1' : '0' },
            signal,
          },
        )
        await corral.untilReady()
        const calls = readFileSync(log, 'utf8')
          .trim()
          .split('\n')
          .map((l) => JSON.parse(l) as { pid: number; master: number; certfile: string; hasDefaultCert: boolean })
        // Once in each worker, with the master's view and corral's own options.
        expect(calls.map((x) => x.pid).sort()).toEqual(corral.workers())
        for (const call of calls)
          expect(call).toMatchObject({ master: corral.pid, certfile: c.serverCert, hasDefaultCert: true })
        const expected = c.fingerprint(throws ? c.serverCert : c.renewedCert)
        for (let i = 0; i < 4; i++) expect(await servedFingerprint(port)).toBe(expected)
        if (throws) await corral.waitForLog(/Hook sslContext failed: sslContext failed on purpose/)
      },
    )
  }
})
