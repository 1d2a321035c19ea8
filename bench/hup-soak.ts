// The master's memory over many reloads: `corral -w 2` from the bundle, N
// HUPs one after another (each once the previous "Reload complete" is
// logged), the master's VmRSS and open fds sampled every 100 HUPs.
//   npm run bench:hups              (node bench/hup-soak.ts [hups] [-- extra node flags via CORRAL_NODE_FLAGS])
// Not part of `npm test`: figures, not assertions (test/faults-hup.test.ts checks the counts).
import { spawn } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const HUPS = Number(process.argv[2] ?? 1000)
const EVERY = 100
const nodeFlags = (process.env.CORRAL_NODE_FLAGS ?? '').split(' ').filter(Boolean)

const rssKb = (pid: number) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1])
const fds = (pid: number) => readdirSync(`/proc/${pid}/fd`).length

const master = spawn(
  process.execPath,
  [...nodeFlags, `${ROOT}bin/corral.js`, '-w', '2', '-b', '127.0.0.1:0', `${ROOT}test/fixtures/app-echo.ts`],
  { stdio: ['ignore', 'pipe', 'pipe'] },
)
let text = ''
let waiting: { pattern: RegExp; from: number; resolve: () => void } | undefined
const onData = (chunk: Buffer) => {
  text += chunk.toString()
  if (waiting?.pattern.test(text.slice(waiting.from))) waiting.resolve()
}
master.stdout.on('data', onData)
master.stderr.on('data', onData)
master.on('exit', (code, signal) => {
  if (waiting) {
    console.error(`master exited (${code ?? signal}) before the reload completed; log tail:\n${text.slice(-2000)}`)
    process.exit(1)
  }
})
const after = (pattern: RegExp, from: number) =>
  new Promise<void>((resolve) => {
    if (pattern.test(text.slice(from))) return resolve()
    waiting = {
      pattern,
      from,
      resolve: () => {
        waiting = undefined
        resolve()
      },
    }
  })

await after(/Ready: 2 worker/, 0)
const pid = master.pid!
const samples: { hups: number; rssMb: number; fds: number }[] = [{ hups: 0, rssMb: rssKb(pid) / 1024, fds: fds(pid) }]
const started = Date.now()
for (let i = 1; i <= HUPS; i++) {
  const from = text.length
  master.kill('SIGHUP')
  await after(/Reload complete/, from)
  if (i % EVERY === 0) {
    samples.push({ hups: i, rssMb: rssKb(pid) / 1024, fds: fds(pid) })
    const s = samples.at(-1)!
    console.log(`${String(i).padStart(5)} HUPs  rss ${s.rssMb.toFixed(1)} MB  fds ${s.fds}`)
  }
}
const completed = text.match(/Reload complete/g)?.length ?? 0
const at100 = samples.find((s) => s.hups === EVERY)
const last = samples.at(-1)!
master.kill('SIGTERM')
await new Promise((r) => master.once('exit', r))
console.log(
  `JSON ${JSON.stringify({ hups: HUPS, completed, seconds: (Date.now() - started) / 1000, nodeFlags, malloc: process.env.MALLOC_ARENA_MAX, growthAfter100Mb: at100 ? +(last.rssMb - at100.rssMb).toFixed(1) : undefined, samples })}`,
)
