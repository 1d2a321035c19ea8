// `corral ctl [-s PATH] [-j] [COMMAND…]`: talks to a running master over its
// control socket (spec/control.md). With a command: one request, its answer,
// exit. Without: an interactive prompt with history, completion and help.
// `corral ctl top` is a live view. `corral status|reload|stop` are shortcuts.
import { connect, type Socket } from 'node:net'
import { createInterface } from 'node:readline'
import { COMMANDS } from '../master/control-commands.ts'
import {
  CONTROL_PROTOCOL_VERSION,
  lineReader,
  RESTART_REASONS,
  STATUS_CLASSES,
  type ControlData,
  type ControlResponse,
  type WorkerRow,
} from '../protocol/control.ts'

const DEFAULT_SOCKET = './corral.ctl'
const USAGE = `usage: corral ctl [-s PATH] [-j] [COMMAND…]
       corral ctl [-s PATH] top [-n COUNT]
       corral status | reload | stop [-s PATH] [-j] [--no-wait]

Without a COMMAND: an interactive prompt (help lists the commands).
  -s, --socket PATH  the master's control socket (default ${DEFAULT_SOCKET})
  -j, --json         print the answer as JSON, one object per line
  -n, --count N      top: stop after N refreshes
  --no-wait          reload, stop: return once the master has the command, not
                     once the reload is complete (or abandoned) or the master gone
`

const EXIT_USAGE = 2
const EXIT_FAILED = 1

interface CtlOptions {
  socket: string
  json: boolean
  count: number | undefined
  words: string[]
}

/**
 * `corral status`, `corral reload`, `corral stop`: the commands PM2 and
 * pumactl users type. Like `pm2 reload` and `systemctl reload`, reload and
 * stop wait for the outcome and say it; --no-wait only hands the command over.
 */
const SHORTCUTS: Readonly<Record<string, readonly string[]>> = {
  status: ['show', 'all'],
  reload: ['reload', 'wait'],
  stop: ['shutdown'],
}

export async function runCtl(argv: readonly string[]): Promise<number> {
  const opts = parseArgs(argv)
  if (typeof opts === 'string') {
    process.stderr.write(opts === '' ? USAGE : `corral ctl: error: ${opts}\n${USAGE}`)
    return opts === '' ? 0 : EXIT_USAGE
  }
  try {
    if (opts.words[0] === 'top') return await top(opts)
    if (opts.words.length === 1 && opts.words[0] === 'upgrade') return await upgrade(opts)
    if (opts.words.length === 0) return await interactive(opts)
    return await oneShot(opts)
  } catch (err) {
    process.stderr.write(`corral ctl: ${err instanceof Error ? err.message : String(err)}\n`)
    return EXIT_FAILED
  }
}

/** A shortcut: `corral status [-s PATH] [-j]` is `corral ctl … show all`. */
export async function runShortcut(name: string, argv: readonly string[]): Promise<number> {
  const noWait = argv.includes('--no-wait')
  const rest = argv.filter((a) => a !== '--no-wait')
  if (noWait && name === 'reload') return runCtl([...rest, 'reload'])
  const code = await runCtl([...rest, ...(SHORTCUTS[name] ?? [])])
  if (name !== 'stop' || noWait || code !== 0) return code
  return masterGone(rest)
}

/** `corral stop`: once the master has the TERM, until its process is gone (it SIGKILLs stragglers at their deadline). */
async function masterGone(argv: readonly string[]): Promise<number> {
  const opts = parseArgs(argv)
  if (typeof opts === 'string') return EXIT_USAGE
  // The master answered `sent` with its pid; ask again only if it is still up (it may be gone already).
  const pid = lastSentTo
  if (pid === undefined) return 0
  for (;;) {
    try {
      process.kill(pid, 0)
    } catch (err) {
      // EPERM: alive, but another user's (the master's, under -u); only ESRCH says it is gone.
      if ((err as NodeJS.ErrnoException).code === 'ESRCH') {
        if (!opts.json) process.stdout.write(`master ${pid} stopped\n`)
        return 0
      }
    }
    await new Promise((r) => setTimeout(r, 100))
  }
}

function parseArgs(argv: readonly string[]): CtlOptions | string {
  const opts: CtlOptions = { socket: DEFAULT_SOCKET, json: false, count: undefined, words: [] }
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
      } else if (a.startsWith('-') && opts.words.length === 0) return `unknown option ${a}`
      else opts.words.push(a)
    } catch (err) {
      return (err as Error).message
    }
  }
  return opts
}

// ---------------------------------------------------------------------------
// The connection

interface Connection {
  request(words: readonly string[]): Promise<ControlResponse>
  close(): void
}

/** Connects, or fails with a sentence that names the path and what is wrong there. */
function open(path: string): Promise<Connection> {
  return new Promise((resolve, reject) => {
    const socket: Socket = connect(path)
    socket.setEncoding('utf8')
    const pending: ((r: ControlResponse) => void)[] = []
    let nextId = 1
    let closedWith: Error | undefined
    const failAll = (err: Error) => {
      closedWith = err
      for (const p of pending.splice(0)) p({ v: CONTROL_PROTOCOL_VERSION, ok: false, error: err.message })
    }
    socket.once('connect', () =>
      resolve({
        request(words) {
          if (closedWith) return Promise.reject(closedWith)
          return new Promise((answered) => {
            pending.push(answered)
            socket.write(`${JSON.stringify({ v: CONTROL_PROTOCOL_VERSION, id: nextId++, command: words })}\n`)
          })
        },
        close: () => socket.end(),
      }),
    )
    socket.on(
      'data',
      lineReader((line) => pending.shift()?.(JSON.parse(line) as ControlResponse)),
    )
    socket.on('error', (err: NodeJS.ErrnoException) => {
      const why = connectError(path, err)
      failAll(why)
      reject(why)
    })
    socket.on('close', () => failAll(new Error(`the master closed ${path} (it may be shutting down)`)))
  })
}

function connectError(path: string, err: NodeJS.ErrnoException): Error {
  switch (err.code) {
    case 'ENOENT':
      return new Error(`no control socket at ${path}: is corral running here? (give -s PATH)`)
    case 'ECONNREFUSED':
      return new Error(`nothing answers on ${path}: the master that made it is gone (a stale socket)`)
    case 'EACCES':
    case 'EPERM':
      return new Error(`not allowed to connect to ${path} (see --control-socket-mode)`)
    case 'ENOTSOCK':
      return new Error(`${path} is not a socket`)
    default:
      return new Error(`cannot talk to ${path}: ${err.message}`)
  }
}

async function oneShot(opts: CtlOptions): Promise<number> {
  return print(await ask(opts.socket, opts.words), opts.json)
}

/** The master the last `sent` answer came from: `corral stop` waits for it. */
let lastSentTo: number | undefined

function print(response: ControlResponse, json: boolean): number {
  if (response.ok && response.data.kind === 'sent') lastSentTo = response.data.master
  if (json) {
    process.stdout.write(`${JSON.stringify(response.ok ? response.data : { error: response.error })}\n`)
  } else if (response.ok) process.stdout.write(format(response.data))
  else process.stderr.write(`corral ctl: ${response.error}\n`)
  if (response.ok && response.data.kind === 'reload' && response.data.outcome !== 'complete') return EXIT_FAILED
  return response.ok ? 0 : EXIT_FAILED
}

// ---------------------------------------------------------------------------
// upgrade: `corral upgrade`'s procedure, through the control sockets

/** How long a new master has to get ready before the upgrade is called off. */
const UPGRADE_TIMEOUT_MS = 120_000

/**
 * USR2 as an event, then the hand-over watched through the sockets: the old
 * master moves its socket to PATH.2 when it starts the new one, which
 * listens on PATH once up. Ready: the old master is stopped gracefully
 * (unless --upgrade auto already does). The new master fails: the old one
 * has moved its socket back to PATH and keeps serving.
 */
async function upgrade(opts: CtlOptions): Promise<number> {
  const path = opts.socket
  const aside = `${path}.2`
  const say = (line: string) => opts.json || process.stdout.write(`corral ctl upgrade: ${line}\n`)
  const first = await machineAt(path)
  if (!first) {
    // Fails with the reason, by name; else the master answered, but not to show machine.
    ;(await open(path)).close()
    throw new Error(`the master at ${path} did not say who it is`)
  }
  const old = first.pid
  const sent = await ask(path, ['upgrade'])
  if (!sent.ok) throw new Error(sent.error)
  say(`sent USR2 to master ${old}`)
  if (!(await until(async () => (await machineAt(aside))?.pid === old, 10_000)))
    throw new Error(`master ${old} did not start a new master (an upgrade already in flight?); see its log`)
  let fresh: number | undefined
  const outcome = await until(async () => {
    const now = await machineAt(path)
    if (now && now.pid !== old && now.ready) {
      fresh = now.pid
      return 'ready'
    }
    if (now?.pid === old) return 'rolled back'
    if (!(await machineAt(aside))) return now ? undefined : 'old master gone'
    return undefined
  }, UPGRADE_TIMEOUT_MS)
  if (outcome === 'rolled back')
    throw new Error(`the new master failed before it was ready; master ${old} keeps serving (see its log)`)
  if (outcome !== 'ready')
    throw new Error(
      outcome === 'old master gone'
        ? `master ${old} exited during the upgrade`
        : 'the new master was not ready in time; see the logs',
    )
  say(`new master ${fresh} is serving; stopping master ${old} gracefully`)
  // --upgrade auto: the old master is already draining by itself.
  const oldState = await machineAt(aside)
  if (oldState && !oldState.draining) await ask(aside, ['shutdown'])
  await until(async () => !(await machineAt(aside)), UPGRADE_TIMEOUT_MS)
  say(`done: master ${fresh} serves`)
  if (opts.json) process.stdout.write(`${JSON.stringify({ kind: 'upgraded', old, new: fresh })}\n`)
  return 0
}

async function ask(path: string, words: readonly string[]): Promise<ControlResponse> {
  const connection = await open(path)
  try {
    return await connection.request(words)
  } finally {
    connection.close()
  }
}

/** The master answering at `path`, if one does. */
async function machineAt(path: string) {
  try {
    const r = await ask(path, ['show', 'machine'])
    return r.ok && r.data.kind === 'machine' ? r.data.machine : undefined
  } catch {
    return undefined
  }
}

async function until<T>(probe: () => Promise<T | undefined | false>, timeoutMs: number): Promise<T | undefined> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const v = await probe()
    if (v !== undefined && v !== false) return v
    if (Date.now() > deadline) return undefined
    await new Promise((r) => setTimeout(r, 100))
  }
}

// ---------------------------------------------------------------------------
// The interactive prompt

// Optional words in brackets complete too ([quick]); placeholders (N, PID) do not.
const WORDS: readonly (readonly string[])[] = COMMANDS.map((c) =>
  c
    .split(' ')
    .map((w) => w.replace(/^\[(.*)\]$/, '$1'))
    .filter((w) => !/^[A-Z]/.test(w)),
)

/** Completes the word under the cursor from the commands that start with the words before it. */
export function complete(line: string): [string[], string] {
  const words = line.split(/\s+/)
  const last = words.pop() ?? ''
  const options = new Set<string>()
  for (const command of [...WORDS, ['quit']]) {
    if (words.every((w, i) => command[i] === w) && command[words.length]?.startsWith(last))
      options.add(`${command[words.length]} `)
  }
  return [[...options], last]
}

async function interactive(opts: CtlOptions): Promise<number> {
  const connection = await open(opts.socket)
  const prompt = process.stdin.isTTY
  const rl = createInterface({
    input: process.stdin,
    output: process.stdout,
    terminal: prompt,
    historySize: 200,
    completer: complete,
  })
  if (prompt) {
    process.stdout.write(`Connected to ${opts.socket}. Type help for the commands, quit to leave.\n`)
    rl.setPrompt('corral> ')
    rl.prompt()
  }
  let failures = 0
  for await (const line of rl) {
    const words = line.trim().split(/\s+/).filter(Boolean)
    if (words[0] === 'quit' || words[0] === 'exit') break
    if (words.length > 0) {
      if (words[0] === 'help') process.stdout.write(`${COMMANDS.join('\n')}\nquit\n`)
      else if (print(await connection.request(words), opts.json) !== 0) failures++
    }
    if (prompt) rl.prompt()
  }
  rl.close()
  connection.close()
  return failures > 0 && !prompt ? EXIT_FAILED : 0
}

// ---------------------------------------------------------------------------
// top

async function top(opts: CtlOptions): Promise<number> {
  const connection = await open(opts.socket)
  const tty = process.stdout.isTTY === true
  let previous: { at: number; total: number; byPid: Map<number, number> } | undefined
  let stop = false
  let wake: (() => void) | undefined
  const quit = () => {
    stop = true
    wake?.()
  }
  const restore = () => {
    if (!tty) return
    if (process.stdin.isTTY) process.stdin.setRawMode(false)
    process.stdin.pause()
    // Back to the screen as it was, cursor shown.
    process.stdout.write('\x1b[?25h\x1b[?1049l')
  }
  if (tty) {
    process.stdout.write('\x1b[?1049h\x1b[?25l')
    if (process.stdin.isTTY) {
      process.stdin.setRawMode(true)
      process.stdin.resume()
      process.stdin.on('data', (key: Buffer) => {
        // q, Q, Ctrl-C
        if (key.includes(0x71) || key.includes(0x51) || key.includes(0x03)) quit()
      })
    }
  }
  process.once('SIGINT', quit)
  process.once('SIGTERM', quit)
  try {
    for (let n = 0; !stop && (opts.count === undefined || n < opts.count); n++) {
      if (n > 0) {
        await new Promise<void>((done) => {
          wake = done
          setTimeout(done, 1000)
        })
        if (stop) break
      }
      const response = await connection.request(['show', 'all'])
      if (!response.ok) throw new Error(response.error)
      if (response.data.kind !== 'all') throw new Error('unexpected answer to show all')
      const { machine, workers, stats, listeners } = response.data
      const at = Date.now()
      const total = STATUS_CLASSES.reduce((sum, c) => sum + stats.requests[c], 0)
      const rate = (now: number, before: number | undefined) =>
        previous && before !== undefined ? Math.max(0, (now - before) / ((at - previous.at) / 1000)) : 0
      const queue = listeners.reduce((sum, l) => sum + (l.queue ?? 0), 0)
      const totalRate = rate(total, previous?.total)
      const rows = workers.map((w) => ({ w, rate: w.pid === null ? 0 : rate(w.requests, previous?.byPid.get(w.pid)) }))
      previous = { at, total, byPid: new Map(workers.flatMap((w) => (w.pid === null ? [] : [[w.pid, w.requests]]))) }
      if (opts.json) {
        process.stdout.write(
          `${JSON.stringify({ machine, queue, requestsPerSecond: totalRate, workers: rows.map((r) => ({ ...r.w, requestsPerSecond: r.rate })) })}\n`,
        )
      } else if (tty) {
        const header =
          `corral master ${machine.pid}  ${machine.state}  workers ${workers.length}/${machine.target}  ` +
          `listen queue ${queue}  ${totalRate.toFixed(1)} req/s  in flight ${stats.requestsInFlight}\n` +
          `${new Date(at).toISOString()}   q or Ctrl-C quits\n\n`
        const table = formatTable(
          ['PID', 'STATE', 'REQ/S', 'INFLIGHT', 'RSS', 'CPU%', 'HEARTBEAT'],
          rows.map(({ w, rate }) => [
            pidText(w),
            w.state,
            rate.toFixed(1),
            String(w.inFlight),
            rss(w.rssBytes),
            cpu(w.cpuPercent),
            `${w.heartbeatAgeSeconds}s`,
          ]),
        )
        process.stdout.write(`\x1b[H\x1b[2J${header}${table}`)
      } else {
        process.stdout.write(
          `${new Date(at).toISOString()} state=${machine.state} workers=${workers.length}/${machine.target} ` +
            `queue=${queue} req/s=${totalRate.toFixed(1)} inflight=${stats.requestsInFlight}` +
            rows
              .map(
                ({ w, rate }) =>
                  ` [${pidText(w)} ${w.state} ${rate.toFixed(1)}r/s rss=${rss(w.rssBytes)} cpu=${cpu(w.cpuPercent)}]`,
              )
              .join('') +
            '\n',
        )
      }
    }
  } finally {
    restore()
    process.off('SIGINT', quit)
    process.off('SIGTERM', quit)
    connection.close()
  }
  return 0
}

// ---------------------------------------------------------------------------
// Tables for people

function format(data: ControlData): string {
  switch (data.kind) {
    case 'workers':
      return workersTable(data.workers)
    case 'stats': {
      const s = data.stats
      return keyValues([
        ['master', String(s.pid)],
        ['uptime', duration(s.uptimeSeconds)],
        ['requests', STATUS_CLASSES.map((c) => `${c} ${s.requests[c]}`).join('  ')],
        ['in flight', String(s.requestsInFlight)],
        ['connections', String(s.connections)],
        ['restarts', RESTART_REASONS.map((r) => `${r} ${s.restarts[r]}`).join('  ')],
        ['reloads', String(s.reloads)],
        ['upgrades', String(s.upgrades)],
      ])
    }
    case 'config':
      return formatTable(
        ['SETTING', 'VALUE', 'SOURCE'],
        data.settings.map((r) => [r.name, r.value === null ? '(none)' : JSON.stringify(r.value), r.source]),
      )
    case 'listeners':
      return formatTable(
        ['ADDRESS', 'FD', 'BACKLOG', 'QUEUE'],
        data.listeners.map((l) => [
          l.address,
          l.fd === null ? '-' : String(l.fd),
          String(l.backlog),
          l.queue === null ? '-' : String(l.queue),
        ]),
      )
    case 'machine':
      return keyValues(Object.entries(data.machine).map(([k, v]) => [k, String(v)]))
    case 'all':
      return [
        format({ kind: 'machine', machine: data.machine }),
        format({ kind: 'workers', workers: data.workers }),
        format({ kind: 'listeners', listeners: data.listeners }),
        format({ kind: 'stats', stats: data.stats }),
      ].join('\n')
    case 'sent':
      return `sent ${data.event}${data.count > 1 ? ` ×${data.count}` : ''}${data.detail ? ` (${data.detail})` : ''} to master ${data.master}\n`
    case 'reload':
      return data.outcome === 'complete'
        ? `reload complete: generation ${data.generation} is serving (master ${data.master})\n`
        : data.outcome === 'abandoned'
          ? `reload abandoned: ${data.detail ?? 'the new workers could not boot'} (master ${data.master})\n`
          : data.outcome === 'refused'
            ? `reload not started: ${data.detail ?? 'the settings were refused'} (master ${data.master})\n`
            : `reload not done: master ${data.master} is stopping\n`
    case 'help':
      return `${data.commands.join('\n')}\n`
  }
}

function workersTable(workers: readonly WorkerRow[]): string {
  return formatTable(
    ['PID', 'GEN', 'STATE', 'AGE', 'REQUESTS', 'INFLIGHT', 'CONNS', 'RSS', 'CPU%', 'HEARTBEAT'],
    workers.map((w) => [
      pidText(w),
      String(w.generation),
      w.state,
      duration(w.ageSeconds),
      String(w.requests),
      String(w.inFlight),
      String(w.connections),
      rss(w.rssBytes),
      cpu(w.cpuPercent),
      `${w.heartbeatAgeSeconds}s ago`,
    ]),
  )
}

/** Columns padded to their widest cell; numbers right-aligned. */
function formatTable(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)))
  const numeric = headers.map((_, i) => rows.length > 0 && rows.every((r) => /^[\d.]+[a-zA-Z%]*$|^-$/.test(r[i] ?? '')))
  const line = (cells: readonly string[]) =>
    `${cells
      .map((c, i) => (numeric[i] ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd()}\n`
  return line(headers) + rows.map(line).join('')
}

function keyValues(pairs: readonly (readonly [string, string])[]): string {
  const width = Math.max(...pairs.map(([k]) => k.length))
  return pairs.map(([k, v]) => `${`${k}:`.padEnd(width + 2)}${v}\n`).join('')
}

const pidText = (w: WorkerRow) => (w.pid === null ? '-' : String(w.pid))
const rss = (bytes: number | null) => (bytes === null ? '-' : `${Math.round(bytes / 1048576)}M`)
const cpu = (percent: number | null) => (percent === null ? '-' : percent.toFixed(1))

function duration(seconds: number): string {
  if (seconds < 60) return `${Math.floor(seconds)}s`
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m${Math.floor(seconds % 60)}s`
  return `${Math.floor(seconds / 3600)}h${Math.floor((seconds % 3600) / 60)}m`
}
