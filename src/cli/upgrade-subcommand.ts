// `corral upgrade --pid PIDFILE [--timeout S]`: the whole USR2 procedure from
// outside (src/cli/upgrade.ts), through signals and the pidfiles, for
// systemd's ExecReload and deploy scripts. Exit 0: the new master serves and the old one is gone.
// Non-zero: nothing changed (the old master rolled back and keeps serving),
// with the reason.
import { asidePath, readPidfile } from '../master/pidfile.ts'
import { RUNTIME_ERROR, USAGE_ERROR } from '../protocol/exit-codes.ts'
import { alive, upgradeMaster, type Masters } from './upgrade.ts'

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
  if (readPidfile(pidfile) === undefined) return fail(`no running master is named in ${pidfile}`)
  const say = (line: string) => process.stdout.write(`corral upgrade: ${line}\n`)
  const outcome = await upgradeMaster(pidfiles(pidfile), { timeoutMs, say })
  return outcome.ok ? 0 : fail(outcome.reason)
}

function fail(line: string): number {
  process.stderr.write(`corral upgrade: ${line}\n`)
  return RUNTIME_ERROR
}

/** The masters as their pidfiles name them: PIDFILE (written once ready), PIDFILE.2 during a hand-over. */
function pidfiles(pidfile: string): Masters {
  const seen = (path: string) => {
    const pid = readPidfile(path)
    return pid === undefined || !alive(pid) ? undefined : { pid, ready: true, draining: false }
  }
  return {
    atPath: async () => seen(pidfile),
    aside: async () => seen(asidePath(pidfile)),
    upgrade: async (old) => signal(old, 'SIGUSR2'),
    // QUIT to an old master already stopping by itself (--upgrade auto) changes nothing.
    stop: async (pid) => void signal(pid, 'SIGQUIT'),
  }
}

/** A signal to a master; why it could not be sent, as a sentence. */
function signal(pid: number, name: NodeJS.Signals): string | undefined {
  try {
    process.kill(pid, name)
    return undefined
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    return code === 'EPERM' ? `not allowed to signal master ${pid} (${name})` : `master ${pid} is not running`
  }
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
