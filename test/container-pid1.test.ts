// corral where a container puts it: PID 1 of a new PID namespace
// (`unshare --fork --pid --mount-proc`, as root), with no init in front of it
// and with tini as the init (what `docker run --init` and the example
// Dockerfile give it). Without an init corral says in one line that orphans
// stay zombies and how to fix it, and the test sees the zombies it warned of;
// under tini they are reaped. Either way TERM is a graceful stop with exit 0,
// and as PID 1 USR2 is refused with its reason.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'
import { afterEach, describe, expect, it } from 'vitest'
import { BIN, ROOT, fixture, freePort, killAll, track, waitFor } from './helpers/corral.ts'
import { get } from './helpers/load.ts'

afterEach(killAll)

const canUnshare = spawnSync('unshare', ['--pid', '--fork', '--mount-proc', 'true'], { timeout: 5000 }).status === 0
const hasTini = spawnSync('tini', ['--version'], { timeout: 5000 }).status === 0
const ORPHANS = 20
/** How long a wait that spans a boot of corral may take before it counts as a hang (2 cores shared by many tests). */
const BOOT_MS = 30_000

interface Proc {
  pid: number
  ppid: number
  state: string
  comm: string
  /** Its pid inside the innermost PID namespace it belongs to. */
  nsPid: number
}

function readProc(pid: number): Proc | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    const nsPids = /^NSpid:\s+(.*)$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]?.split(/\s+/) ?? []
    return {
      pid,
      ppid: Number(fields[1]),
      state: fields[0]!,
      comm: stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')')),
      nsPid: Number(nsPids.at(-1)),
    }
  } catch {
    return undefined
  }
}

/** Every process below root, zombies included. */
function processesUnder(root: number): Proc[] {
  const all = readdirSync('/proc')
    .filter((n) => /^\d+$/.test(n))
    .flatMap((n) => readProc(Number(n)) ?? [])
  const below = new Set([root])
  let grew = true
  while (grew) {
    grew = false
    for (const p of all)
      if (!below.has(p.pid) && below.has(p.ppid)) {
        below.add(p.pid)
        grew = true
      }
  }
  return all.filter((p) => p.pid !== root && below.has(p.pid))
}

interface Namespaced {
  unshare: ChildProcess
  log: () => string
  exited: Promise<number | null>
  /** The corral master's pid as this test sees it (outside the namespace). */
  master: () => number
  url: string
}

/** `unshare … [init --] node corral …`: corral in a PID namespace of its own, killed by pid in teardown. */
async function inNamespace(init: string[]): Promise<Namespaced> {
  const port = await freePort()
  const unshare = spawn(
    'unshare',
    [
      '--pid',
      '--fork',
      '--mount-proc',
      '--kill-child',
      ...init,
      process.execPath,
      BIN,
      '-w',
      '1',
      '-b',
      `127.0.0.1:${port}`,
      fixture('app-orphans.ts'),
    ],
    { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
  )
  track(unshare.pid!)
  let text = ''
  unshare.stdout!.on('data', (c: Buffer) => (text += c.toString()))
  unshare.stderr!.on('data', (c: Buffer) => (text += c.toString()))
  const exited = new Promise<number | null>((resolve) => unshare.on('exit', (code) => resolve(code)))
  await waitFor(() => /Ready: 1 worker/.test(text) || unshare.exitCode !== null, {
    what: 'corral ready',
    timeoutMs: BOOT_MS,
  })
  expect(text).toMatch(/Ready: 1 worker/)
  const master = () => processesUnder(unshare.pid!).find((p) => p.nsPid === masterNsPid(text))!.pid
  return { unshare, log: () => text, exited, master, url: `http://127.0.0.1:${port}` }
}

/** The master's pid inside its namespace, from its log lines. */
const masterNsPid = (log: string) => Number(/\[(\d+)\] \[INFO\] Ready/.exec(log)?.[1])

/** Requests /orphan n times; resolves with the orphans' pids, as the namespace numbers them. */
async function makeOrphans(url: string, n: number): Promise<number[]> {
  const pids: number[] = []
  for (let i = 0; i < n; i++) {
    const res = await get(`${url}/orphan`)
    expect(res.status).toBe(200)
    pids.push(Number(res.body))
  }
  return pids
}

/** A request in flight (the app said it holds it), then TERM to pid: it is answered, and everything exits 0. */
async function gracefulTerm(ns: Namespaced, pid: number): Promise<void> {
  const mark = ns.log().length
  const slow = get(`${ns.url}/slow?ms=1000`)
  await waitFor(() => ns.log().slice(mark).includes('holding /slow'), {
    what: 'the request in flight',
    timeoutMs: BOOT_MS,
  })
  process.kill(pid, 'SIGTERM')
  const res = await slow
  expect(res.status).toBe(200)
  expect(res.body).toBe('slow done')
  expect(await ns.exited).toBe(0)
  expect(ns.log()).toMatch(/Shutting down: Master\n/)
}

describe.skipIf(!canUnshare)('corral in a PID namespace (a container)', { timeout: 4 * BOOT_MS }, () => {
  it('as PID 1 with no init: warns in one line with the fix, leaves the orphans it warned of as zombies, refuses USR2, stops gracefully on TERM with exit 0', async () => {
    const ns = await inNamespace([])
    expect(masterNsPid(ns.log())).toBe(1)
    const warnings = ns.log().match(/^.*\[WARNING\] corral is PID 1.*$/gm) ?? []
    expect(warnings).toHaveLength(1)
    expect(warnings[0]).toMatch(/orphans of the app stay zombies/)
    expect(warnings[0]).toMatch(/docker run --init/)
    expect(warnings[0]).toMatch(/tini/)

    // What the warning says, seen: each orphan ends as a zombie of the master.
    const orphans = await makeOrphans(ns.url, ORPHANS)
    const master = ns.master()
    await waitFor(
      () => {
        const zombies = processesUnder(ns.unshare.pid!).filter(
          (p) => p.state === 'Z' && p.ppid === master && orphans.includes(p.nsPid),
        )
        return zombies.length === ORPHANS
      },
      { what: `${ORPHANS} zombies under the master`, timeoutMs: BOOT_MS },
    )

    const mark = ns.log().length
    process.kill(master, 'SIGUSR2')
    await waitFor(() => ns.log().slice(mark).includes('USR2 refused: corral is PID 1'), {
      what: 'USR2 refused',
      timeoutMs: BOOT_MS,
    })
    expect(ns.log().slice(mark)).toMatch(/a new master would die with this one\. Use a rolling deploy instead/)
    expect((await get(ns.url)).status).toBe(200)

    await gracefulTerm(ns, master)
  })

  it.skipIf(!hasTini)(
    'under tini (docker run --init): no warning, orphans are reaped, TERM reaches corral and everything exits 0',
    async () => {
      const ns = await inNamespace(['tini', '--'])
      expect(masterNsPid(ns.log())).not.toBe(1)
      expect(ns.log()).not.toMatch(/corral is PID 1/)

      const orphans = await makeOrphans(ns.url, ORPHANS)
      // Every orphan ran, was adopted by tini, and is gone: none is left, zombie or not.
      await waitFor(() => !processesUnder(ns.unshare.pid!).some((p) => orphans.includes(p.nsPid)), {
        what: 'every orphan reaped',
        timeoutMs: BOOT_MS,
      })
      expect(new Set(orphans).size).toBe(ORPHANS)

      // tini passes TERM on to corral (its child) and exits with its code.
      const tini = processesUnder(ns.unshare.pid!).find((p) => p.nsPid === 1 && p.comm === 'tini')
      expect(tini).toBeDefined()
      await gracefulTerm(ns, tini!.pid)
    },
  )
})
