// `corral upgrade --pid PIDFILE [--timeout S]`: the whole USR2 procedure from
// outside, through signals and the pidfiles, for systemd's ExecReload and
// deploy scripts. Exit 0: the new master serves and the old one is gone.
// Non-zero: nothing changed (the old master rolled back and keeps serving),
// with the reason.
import { readdirSync, readFileSync } from 'node:fs'
import { asidePath, readPidfile } from '../master/pidfile.ts'
import { RUNTIME_ERROR, USAGE_ERROR } from '../protocol/exit-codes.ts'

const USAGE = 'usage: corral upgrade --pid PIDFILE [--timeout SECONDS]'

const UPGRADE_HELP = `${USAGE}

Replace the running master named in PIDFILE with a new one, as USR2 does,
and wait: the new master starts with the same command line and takes over
the listening sockets; once its workers serve, the old master stops
gracefully. If the new master fails first, the old one keeps serving.

Options:
  -p, --pid PIDFILE      the running master's pidfile (its -p/--pid)
  -t, --timeout SECONDS  how long the new master may take to be ready
                         [default: 60]; past it, it is stopped and the
                         old master keeps serving
  -h, --help             this text

Exit codes: 0 the new master serves and the old one is gone; 1 nothing
changed (the reason is printed); 2 usage error. See spec/upgrade.md.
`

export async function runUpgrade(argv: string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(UPGRADE_HELP)
    return 0
  }
  const opts = parse(argv)
  if (typeof opts === 'string') {
    process.stderr.write(`corral upgrade: error: ${opts}\n${USAGE}\n`)
    return USAGE_ERROR
  }
  const { pidfile, timeoutMs } = opts
  const say = (line: string) => process.stdout.write(`corral upgrade: ${line}\n`)
  const fail = (line: string) => {
    process.stderr.write(`corral upgrade: ${line}\n`)
    return RUNTIME_ERROR
  }
  const old = readPidfile(pidfile)
  if (old === undefined) return fail(`no running master is named in ${pidfile}`)

  process.kill(old, 'SIGUSR2')
  say(`sent USR2 to master ${old}`)
  // Accepting USR2, the old master moves its pidfile aside at once.
  if (!(await until(() => readPidfile(asidePath(pidfile)) === old, 5_000))) {
    return fail(
      `master ${old} did not start a new master (PID 1, an upgrade already in flight, or its preExec hook failed?); see its log`,
    )
  }
  const deadline = Date.now() + timeoutMs
  let fresh: number | undefined
  const outcome = await until(() => {
    fresh = readPidfile(pidfile)
    if (fresh !== undefined && fresh !== old) return 'ready'
    if (fresh === old) return 'rolled back'
    if (!alive(old)) return 'old master died'
    return undefined
  }, timeoutMs)
  if (outcome === 'rolled back')
    return fail(`the new master failed before it was ready; master ${old} keeps serving (see its log)`)
  if (outcome === 'old master died') return fail(`master ${old} exited during the upgrade; see its log`)
  if (outcome !== 'ready') {
    // Too slow: end the new master, and the old one rolls back by itself.
    for (const pid of newMasters(old)) process.kill(pid, 'SIGQUIT')
    await until(() => readPidfile(pidfile) === old, 10_000)
    return fail(`the new master was not ready after ${timeoutMs / 1000} s; rolled back, master ${old} keeps serving`)
  }
  say(`new master ${fresh} is serving; stopping master ${old} gracefully`)
  process.kill(old, 'SIGQUIT')
  if (!(await until(() => !alive(old), Math.max(deadline - Date.now(), 0) + 60_000))) {
    return fail(`master ${old} has not exited yet; the new master ${fresh} serves`)
  }
  say(`done: master ${fresh} serves`)
  return 0
}

function parse(argv: string[]): { pidfile: string; timeoutMs: number } | string {
  let pidfile: string | undefined
  let timeout = 60
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i]!.split(/=(.*)/s)
    const value = () => inline ?? argv[++i]
    if (flag === '--pid' || flag === '-p') pidfile = value()
    else if (flag === '--timeout' || flag === '-t') timeout = Number(value())
    else return `unknown option ${argv[i]}`
  }
  if (!pidfile) return '--pid PIDFILE is required'
  if (!Number.isFinite(timeout) || timeout <= 0) return '--timeout: expected a positive number of seconds'
  return { pidfile, timeoutMs: timeout * 1000 }
}

async function until<T>(probe: () => T | undefined | false, timeoutMs: number): Promise<T | undefined> {
  const end = Date.now() + timeoutMs
  for (;;) {
    const v = probe()
    if (v !== undefined && v !== false) return v
    if (Date.now() >= end) return undefined
    await new Promise((r) => setTimeout(r, 50))
  }
}

function stat(pid: number): string[] | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return text.slice(text.lastIndexOf(')') + 2).split(' ')
  } catch {
    return undefined
  }
}

/** Alive and not a zombie. */
const alive = (pid: number) => {
  const s = stat(pid)
  return s !== undefined && s[0] !== 'Z'
}

/** The masters a master started on USR2: its children titled as masters. */
function newMasters(parent: number): number[] {
  return readdirSync('/proc')
    .filter((n) => /^\d+$/.test(n) && stat(Number(n))?.[1] === String(parent))
    .map(Number)
    .filter((pid) => {
      try {
        return readFileSync(`/proc/${pid}/cmdline`, 'utf8').startsWith('corral: master')
      } catch {
        return false
      }
    })
}
