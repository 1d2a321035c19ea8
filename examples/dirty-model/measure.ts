// Starts corral with each layout, waits until it answers /predict, and sums
// the resident memory (VmRSS) of the master and every process below it:
//   node examples/dirty-model/measure.ts        (MODEL_MB=300 by default)
import { spawn } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { fileURLToPath } from 'node:url'

const here = fileURLToPath(new URL('.', import.meta.url))
const bin = fileURLToPath(new URL('../../bin/corral.js', import.meta.url))

const LAYOUTS = {
  '4 HTTP workers, the model in each': ['-w', '4', 'inline.ts'],
  '4 HTTP workers + 1 dirty worker with the model': ['-w', '4', '--dirty-app', 'model=./model.ts:Model:1', 'app.ts'],
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number }
      s.close(() => resolve(port))
    })
  })
}

function field(pid: number, name: string): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/status`, 'utf8').match(new RegExp(`^${name}:\\s+(.*)$`, 'm'))?.[1]
  } catch {
    return undefined
  }
}

function tree(root: number): number[] {
  const pids = readdirSync('/proc')
    .filter((n) => /^\d+$/.test(n))
    .map(Number)
  const out = [root]
  for (let i = 0; i < out.length; i++) for (const p of pids) if (Number(field(p, 'PPid')) === out[i]) out.push(p)
  return out
}

const rssMb = (pid: number) => Number.parseInt(field(pid, 'VmRSS') ?? '0', 10) / 1024

for (const [name, args] of Object.entries(LAYOUTS)) {
  const port = await freePort()
  const master = spawn(process.execPath, [bin, '--bind', `127.0.0.1:${port}`, '--no-control-socket', ...args], {
    cwd: here,
    stdio: 'ignore',
  })
  // Ready when a prediction comes back: every worker has its model (or the dirty worker has).
  for (;;) {
    const answer = await fetch(`http://127.0.0.1:${port}/predict?x=0.1,0.2`).catch(() => undefined)
    if (answer?.ok) break
    await new Promise((r) => setTimeout(r, 200))
  }
  // Workers build their model as they boot, some after the first answers: the sum is taken once it holds still.
  let total = 0
  let pids: number[] = []
  for (let still = 0; still < 4; ) {
    await new Promise((r) => setTimeout(r, 500))
    pids = tree(master.pid as number)
    const now = pids.reduce((sum, p) => sum + rssMb(p), 0)
    still = Math.abs(now - total) < 2 ? still + 1 : 0
    total = now
  }
  console.log(`${name}: ${total.toFixed(0)} MB RSS over ${pids.length} processes`)
  master.kill('SIGTERM')
  await new Promise((r) => master.on('exit', r))
}
