// `corral ctl [-s PATH] [-j] [COMMAND…]`: talks to a running master over its
// control socket (spec/control.md). With a command: one request, its answer,
// exit. Without: an interactive prompt (src/cli/ctl-prompt.ts). `top` is a
// live view (ctl-top.ts), `upgrade` the whole USR2 procedure (upgrade.ts).
// `corral status|reload|stop` are shortcuts.
import { findSetting } from '../config/registry.ts'
import type { ControlResponse } from '../protocol/control.ts'
import { ask, machineAt, open } from './ctl-client.ts'
import { interactive } from './ctl-prompt.ts'
import { format } from './ctl-tables.ts'
import { top } from './ctl-top.ts'
import { alive, upgradeMaster, type Masters } from './upgrade.ts'

const DEFAULT_SOCKET = './corral.ctl'
/** `ctl upgrade --timeout`'s default, as `corral upgrade`'s. */
const DEFAULT_UPGRADE_TIMEOUT_S = 60
const USAGE = `usage: corral ctl [-s PATH] [-j] [COMMAND…]
       corral ctl [-s PATH] top [-n COUNT]
       corral ctl [-s PATH] [-t SECONDS] upgrade
       corral status | reload | stop [-s PATH] [-j] [--no-wait]

Without a COMMAND: an interactive prompt (help lists the commands).
  -s, --socket PATH    the master's control socket (default ${DEFAULT_SOCKET})
  -j, --json           print the answer as JSON, one object per line
  -n, --count N        top: stop after N refreshes
  -t, --timeout S      upgrade: how long the new master may take to be ready
                       [default: ${DEFAULT_UPGRADE_TIMEOUT_S}]; past it, it is stopped and the old
                       master keeps serving
  --no-wait            reload, stop: return once the master has the command, not
                       once the reload is complete (or abandoned, or refused) or
                       the master gone
`

const EXIT_USAGE = 2
const EXIT_FAILED = 1
/**
 * How long `corral stop` waits beyond the master's graceful timeout: its
 * workers are SIGKILLed at that deadline, and what is left (the onExit hook,
 * closing the listeners and logs) takes moments.
 */
const STOP_MARGIN_S = 15

interface CtlOptions {
  socket: string
  json: boolean
  count: number | undefined
  timeoutS: number
  words: string[]
}

/**
 * `corral status`, `corral reload`, `corral stop`: the commands PM2 and
 * pumactl users type. Like `pm2 reload` and `systemctl reload`, reload and
 * stop wait for the outcome and say it; --no-wait only hands the command over.
 */
const SHORTCUTS = ['status', 'reload', 'stop'] as const
type Shortcut = (typeof SHORTCUTS)[number]

export async function runCtl(argv: readonly string[]): Promise<number> {
  const opts = parseArgs(argv)
  if (typeof opts === 'string') return usage(opts)
  return reporting(() => {
    if (opts.words[0] === 'top') return top(opts)
    if (opts.words.length === 1 && opts.words[0] === 'upgrade') return upgrade(opts)
    if (opts.words.length === 0) return interactive(opts.socket, (r) => print(r, opts.json))
    return oneShot(opts, opts.words)
  })
}

/** A shortcut: `corral status [-s PATH] [-j]` is `corral ctl … show all`. */
export async function runShortcut(name: Shortcut, argv: readonly string[]): Promise<number> {
  const wait = !argv.includes('--no-wait')
  const opts = parseArgs(argv.filter((a) => a !== '--no-wait'))
  if (typeof opts === 'string') return usage(opts)
  if (opts.words.length > 0)
    return usage(`corral ${name} takes no command (${JSON.stringify(opts.words.join(' '))}); see corral ctl`)
  return reporting(() => {
    if (name === 'status') return oneShot(opts, ['show', 'all'])
    if (name === 'reload') return oneShot(opts, wait ? ['reload', 'wait'] : ['reload'])
    return stop(opts, wait)
  })
}

function usage(problem: string): number {
  process.stderr.write(problem === '' ? USAGE : `corral ctl: error: ${problem}\n${USAGE}`)
  return problem === '' ? 0 : EXIT_USAGE
}

/** Runs a command; a failure (no socket, a closed connection) is one line and exit 1. */
async function reporting(run: () => Promise<number>): Promise<number> {
  try {
    return await run()
  } catch (err) {
    process.stderr.write(`corral ctl: ${err instanceof Error ? err.message : String(err)}\n`)
    return EXIT_FAILED
  }
}

function parseArgs(argv: readonly string[]): CtlOptions | string {
  const opts: CtlOptions = {
    socket: DEFAULT_SOCKET,
    json: false,
    count: undefined,
    timeoutS: DEFAULT_UPGRADE_TIMEOUT_S,
    words: [],
  }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!
    const value = () => {
      const v = argv[++i]
      if (v === undefined) throw new Error(`${a} needs a value`)
      return v
    }
    try {
      if (a === '-h' || a === '--help') return ''
      else if (a === '-s' || a === '--socket') opts.socket = value()
      else if (a.startsWith('--socket=')) opts.socket = a.slice('--socket='.length)
      else if (a === '-j' || a === '--json') opts.json = true
      else if (a === '-n' || a === '--count') {
        const n = Number(value())
        if (!Number.isInteger(n) || n < 1) return `${a}: expected a positive integer`
        opts.count = n
      } else if (a === '-t' || a === '--timeout') {
        const s = Number(value())
        if (!Number.isFinite(s) || s <= 0) return `${a}: expected a positive number of seconds`
        opts.timeoutS = s
      } else if (a.startsWith('-') && opts.words.length === 0) return `unknown option ${a}`
      else opts.words.push(a)
    } catch (err) {
      return (err as Error).message
    }
  }
  return opts
}

async function oneShot(opts: CtlOptions, words: readonly string[]): Promise<number> {
  return print(await ask(opts.socket, words), opts.json)
}

function print(response: ControlResponse, json: boolean): number {
  if (json) {
    process.stdout.write(`${JSON.stringify(response.ok ? response.data : { error: response.error })}\n`)
  } else if (response.ok) process.stdout.write(format(response.data))
  else process.stderr.write(`corral ctl: ${response.error}\n`)
  if (response.ok && response.data.kind === 'reload' && response.data.outcome !== 'complete') return EXIT_FAILED
  return response.ok ? 0 : EXIT_FAILED
}

/**
 * `corral stop`: TERM through the socket, then, unless --no-wait, until the
 * master that answered is gone. It SIGKILLs stragglers at its graceful
 * timeout, so a master still there well after that is stuck: said, exit 1.
 */
async function stop(opts: CtlOptions, wait: boolean): Promise<number> {
  const config = wait ? await ask(opts.socket, ['show', 'config']) : undefined
  const response = await ask(opts.socket, ['shutdown'])
  const code = print(response, opts.json)
  if (!wait || code !== 0 || !response.ok || response.data.kind !== 'sent') return code
  const pid = response.data.master
  const graceful =
    config?.ok && config.data.kind === 'config'
      ? Number(config.data.settings.find((s) => s.name === 'gracefulTimeout')?.value)
      : Number.NaN
  // A master that did not say (another version): the default's limit.
  const gracefulS = Number.isFinite(graceful) ? graceful : Number(findSetting('gracefulTimeout')?.default)
  const limitS = gracefulS + STOP_MARGIN_S
  const deadline = Date.now() + limitS * 1000
  while (alive(pid)) {
    if (Date.now() >= deadline) {
      process.stderr.write(
        `corral ctl: master ${pid} is still running ${limitS} s after TERM (its graceful timeout is ${gracefulS} s); see its log\n`,
      )
      return EXIT_FAILED
    }
    await new Promise((r) => setTimeout(r, 100))
  }
  if (!opts.json) process.stdout.write(`master ${pid} stopped\n`)
  return 0
}

/**
 * `corral ctl upgrade`: corral upgrade's procedure (src/cli/upgrade.ts)
 * watched through the control sockets: the old master moves its socket to
 * PATH.2 when it starts the new one, which listens on PATH.
 */
async function upgrade(opts: CtlOptions): Promise<number> {
  const path = opts.socket
  if (!(await machineAt(path))) {
    // Fails with the reason, by name; else the master answered, but not to show machine.
    ;(await open(path)).close()
    throw new Error(`the master at ${path} did not say who it is`)
  }
  const say = (line: string) => opts.json || process.stdout.write(`corral ctl upgrade: ${line}\n`)
  const outcome = await upgradeMaster(controlSockets(path), { timeoutMs: opts.timeoutS * 1000, say })
  if (!outcome.ok) throw new Error(outcome.reason)
  if (opts.json) process.stdout.write(`${JSON.stringify({ kind: 'upgraded', old: outcome.old, new: outcome.fresh })}\n`)
  return 0
}

/** The masters as their control sockets show them: PATH, and PATH.2 during a hand-over. */
function controlSockets(path: string): Masters {
  const aside = `${path}.2`
  const seen = async (at: string) => {
    const m = await machineAt(at)
    return m && { pid: m.pid, ready: m.ready, draining: m.draining }
  }
  return {
    atPath: () => seen(path),
    aside: () => seen(aside),
    async upgrade() {
      const r = await ask(path, ['upgrade'])
      return r.ok ? undefined : r.error
    },
    async stop(pid, where) {
      if (where === 'aside') await ask(aside, ['shutdown']).catch(() => undefined)
      else {
        // A new master that is not ready may not listen on PATH yet: a signal reaches it.
        try {
          process.kill(pid, 'SIGQUIT')
        } catch {
          // Gone already.
        }
      }
    },
  }
}
