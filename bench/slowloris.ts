// How much 1 000 idle slowloris connections (an unfinished request head each)
// delay a normal request: corral -w 2 from the bundle, 200 sequential GETs on
// new connections before and while the 1 000 are held by the workers.
//   npm run bench:slowloris        (node bench/slowloris.ts [idle])
// Not part of `npm test`: figures (test/faults-slowloris.test.ts checks the request is answered).
import { spawn } from 'node:child_process'
import { request } from 'node:http'
import { fileURLToPath } from 'node:url'
import { freePort, waitFor } from '../test/helpers/corral.ts'
import { openSlowloris, serverSideOwners } from '../test/helpers/sockets.ts'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const IDLE = Number(process.argv[2] ?? 1000)
const SAMPLES = 200

const port = await freePort()
const master = spawn(
  process.execPath,
  [`${ROOT}bin/corral.js`, '-w', '2', '-b', `127.0.0.1:${port}`, `${ROOT}test/fixtures/app-pid.ts`],
  { stdio: ['ignore', 'ignore', 'pipe'] },
)
let log = ''
master.stderr.on('data', (c: Buffer) => (log += c.toString()))
await waitFor(() => /Ready: 2 worker/.test(log), { timeoutMs: 30_000 })

const once = () =>
  new Promise<number>((resolve, reject) => {
    const start = process.hrtime.bigint()
    request(`http://127.0.0.1:${port}/`, { agent: false }, (res) => {
      res.resume()
      res.on('end', () => resolve(Number(process.hrtime.bigint() - start) / 1e6))
    })
      .on('error', reject)
      .end()
  })
async function sample(): Promise<{ median: number; p99: number; max: number }> {
  const ms: number[] = []
  for (let i = 0; i < SAMPLES; i++) ms.push(await once())
  ms.sort((a, b) => a - b)
  const at = (q: number) => +ms[Math.min(ms.length - 1, Math.floor(q * ms.length))]!.toFixed(2)
  return { median: at(0.5), p99: at(0.99), max: at(1) }
}

await sample() // warm-up: the first requests compile the code paths in both workers
const before = await sample()
const idle = await openSlowloris(port, IDLE)
await waitFor(() => serverSideOwners(port).filter(Boolean).length >= IDLE, { timeoutMs: 30_000 })
const during = await sample()
const stillOpen = IDLE - idle.closed()
for (const s of idle.sockets) s.destroy()
master.kill('SIGTERM')
await new Promise((r) => master.once('exit', r))
console.log(`GET on a new connection, ms (${SAMPLES} each): without ${JSON.stringify(before)}`)
console.log(`with ${IDLE} idle slowloris connections: ${JSON.stringify(during)}; still open after: ${stillOpen}`)
console.log(`JSON ${JSON.stringify({ idle: IDLE, samples: SAMPLES, before, during, stillOpen })}`)
