// `corral ctl top`: a live view of the master once a second: a table on a
// terminal (q or Ctrl-C quits and gives the screen back), a line per refresh
// otherwise, JSON with -j.
import { STATUS_CLASSES } from '../protocol/control.ts'
import { open } from './ctl-client.ts'
import { cpu, formatTable, pidText, rss } from './ctl-tables.ts'

export interface TopOptions {
  readonly socket: string
  readonly json: boolean
  /** Stop after this many refreshes (for scripts and tests); undefined: until quit. */
  readonly count: number | undefined
}

export async function top(opts: TopOptions): Promise<number> {
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
