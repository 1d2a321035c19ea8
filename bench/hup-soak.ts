// The master's memory over many reloads: `corral -w 2` from the bundle, N
// HUPs one after another (each once the previous "Reload complete" is
// logged), the master's VmRSS and open fds sampled every 100 HUPs, with the
// RSS split by kind of mapping (/proc/PID/smaps): small anonymous mappings
// (V8 allocates its heap, young generation included, in 256 KiB pages), large
// anonymous ones (malloc's arenas, V8's large objects), files (the node
// binary) and the brk heap. spec/reliability.md says what each one did.
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

/** The master's RSS in MB by kind of mapping. */
function rssByKind(pid: number): Record<'smallAnon' | 'largeAnon' | 'files' | 'brk' | 'other', number> {
  const kb = { smallAnon: 0, largeAnon: 0, files: 0, brk: 0, other: 0 }
  let kind: keyof typeof kb = 'other'
  for (const line of readFileSync(`/proc/${pid}/smaps`, 'utf8').split('\n')) {
    const head = /^([0-9a-f]+)-([0-9a-f]+) \S+ \S+ \S+ \S+\s*(.*)$/.exec(line)
    if (head) {
      const sizeKb = (Number.parseInt(head[2]!, 16) - Number.parseInt(head[1]!, 16)) / 1024
      const name = head[3] ?? ''
      kind =
        name === ''
          ? sizeKb <= 1024
            ? 'smallAnon'
            : 'largeAnon'
          : name.startsWith('/')
            ? 'files'
            : name === '[heap]'
              ? 'brk'
              : 'other'
      continue
    }
    const rss = /^Rss:\s+(\d+) kB/.exec(line)
    if (rss) kb[kind] += Number(rss[1])
  }
  return Object.fromEntries(Object.entries(kb).map(([k, v]) => [k, +(v / 1024).toFixed(1)])) as typeof kb
}

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
type Sample = { hups: number; rssMb: number; fds: number; byKind: ReturnType<typeof rssByKind> }
const sample = (hups: number): Sample => ({ hups, rssMb: rssKb(pid) / 1024, fds: fds(pid), byKind: rssByKind(pid) })
const samples: Sample[] = [sample(0)]
const started = Date.now()
for (let i = 1; i <= HUPS; i++) {
  const from = text.length
  master.kill('SIGHUP')
  await after(/Reload complete/, from)
  if (i % EVERY === 0) {
    const s = sample(i)
    samples.push(s)
    const kinds = Object.entries(s.byKind)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ')
    console.log(`${String(i).padStart(5)} HUPs  rss ${s.rssMb.toFixed(1)} MB (${kinds})  fds ${s.fds}`)
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
