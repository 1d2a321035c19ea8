// A worker's memory while its access log stalls: corral -w 1 with
// --access-logfile a FIFO whose reader reads nothing, flooded with requests
// whose access-log lines are about 4 KB each; the worker's VmRSS every
// 2 000 requests.
//   npm run bench:log-stall        (node bench/log-stall.ts [requests] [corral checkout, default this one])
// Not part of `npm test`: figures (test/faults-log-stall.test.ts checks the counts).
import { execFileSync, spawn } from 'node:child_process'
import { closeSync, constants, mkdtempSync, openSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { Agent, request } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { freePort, waitFor } from '../test/helpers/corral.ts'

const REQUESTS = Number(process.argv[2] ?? 10_000)
const ROOT = process.argv[3] ?? fileURLToPath(new URL('..', import.meta.url))
const EVERY = 2000
const AGENT = 'x'.repeat(4000)

const dir = mkdtempSync(join(tmpdir(), 'corral-log-stall-'))
const fifo = join(dir, 'access.log')
execFileSync('mkfifo', [fifo])
const stalled = openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK)
const port = await freePort()
const master = spawn(
  process.execPath,
  [
    `${ROOT}/bin/corral.js`,
    '-w',
    '1',
    '-b',
    `127.0.0.1:${port}`,
    '--access-logfile',
    fifo,
    `${ROOT}/test/fixtures/app-pid.ts`,
  ],
  { stdio: ['ignore', 'ignore', 'pipe'] },
)
let log = ''
master.stderr.on('data', (c: Buffer) => (log += c.toString()))
await waitFor(() => /Ready: 1 worker/.test(log), { timeoutMs: 30_000 })
const worker = Number(
  readdirSync('/proc').find(
    (p) =>
      /^\d+$/.test(p) && readFileSync(`/proc/${p}/stat`, 'utf8').split(') ')[1]?.split(' ')[1] === String(master.pid),
  ),
)
const rssMb = () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${worker}/status`, 'utf8'))?.[1]) / 1024

const agent = new Agent({ keepAlive: true, maxSockets: 8 })
const send = () =>
  new Promise<void>((resolve, reject) => {
    request(`http://127.0.0.1:${port}/`, { agent, headers: { 'user-agent': AGENT } }, (res) => {
      res.resume()
      res.on('end', resolve)
    })
      .on('error', reject)
      .end()
  })
const samples = [{ requests: 0, rssMb: +rssMb().toFixed(1) }]
for (let done = 0; done < REQUESTS; ) {
  await Promise.all(Array.from({ length: EVERY }, send))
  done += EVERY
  samples.push({ requests: done, rssMb: +rssMb().toFixed(1) })
  console.log(`${String(done).padStart(6)} requests  worker rss ${samples.at(-1)!.rssMb} MB`)
}
agent.destroy()
master.kill('SIGKILL')
process.kill(worker, 'SIGKILL')
closeSync(stalled)
rmSync(dir, { recursive: true })
console.log(`JSON ${JSON.stringify({ requests: REQUESTS, lineBytes: AGENT.length + 100, root: ROOT, samples })}`)
