// Log files: buffered, reopenable, flushed at exit.
//
// A file target gathers lines for up to FILE_FLUSH_MS and writes them in one
// write(2), asynchronously (one write in flight, everything written meanwhile
// coalesced into the next); lines written in one turn of the event loop to
// `-` go out together to stdout or stderr, which
// Node writes synchronously on Linux, in chunks of at most PIPE_BUF bytes cut
// at line ends so that several workers sharing one pipe never interleave
// inside a line. reopen() (USR1) opens the path again and closes the old
// descriptor once nothing is in flight on it: after logrotate renames the
// file, every line lands in the old file or the new one, none is lost.
// Every open log file of the process is reopened by reopenLogFiles() and
// flushed by closeLogFiles(), which the master and the workers await before
// they exit.
// A file whose writes stall (a hung NFS mount, a FIFO nobody reads) keeps at
// most MAX_PENDING_BYTES waiting; lines beyond that are dropped and counted,
// and the count is said on stderr (the error log) once a write completes again.
import { closeSync, openSync, write, writeSync } from 'node:fs'
import { setErrorLogWriter } from './log.ts'

export interface LogFile {
  /** The path, or `-`. */
  readonly path: string
  /** Appends text (whole lines, newline included). */
  write(text: string): void
  /** Opens the path again (a no-op for `-`). */
  reopen(): void
  /** Resolves once everything written so far is out; then closes the file. */
  close(): Promise<void>
}

/** Linux's PIPE_BUF: writes up to this size to a pipe are atomic. */
const PIPE_BUF = 4096
/** A file write larger than this goes out without waiting for FILE_FLUSH_MS. */
const EAGER_BYTES = 64 * 1024
/**
 * How long a file target gathers lines before writing them. Each fs.write is
 * a round trip through libuv's thread pool (on a worker pinned to one core,
 * that thread takes the same core): once per event-loop turn it cost an
 * access log with a new connection per request about 12% of the worker's CPU
 * (profiled, spec/logging.md). Once per 20 ms it costs nothing measurable,
 * and a line still reaches the file well before anyone reads it.
 */
const FILE_FLUSH_MS = 20
/**
 * The most a file target keeps waiting while its write in flight does not
 * complete: 1 MiB per log file, some 10 000 access-log lines, seconds of
 * traffic for a busy worker, and a bound on its memory when the disk stalls
 * for good (spec/logging.md).
 */
export const MAX_PENDING_BYTES = 1024 * 1024

const open = new Set<LogFileImpl>()
/** Where a log file reports its own trouble: stderr, since the error log may be the file in trouble. */
const report = (message: string): void => void process.stderr.write(`corral: ${message}\n`)

/**
 * Opens a log file for appending (created if missing), or the standard
 * stream for `-`. Throws, with a message naming `label` (the flag), when the
 * file cannot be opened.
 */
export function openLogFile(path: string, { stream, label }: { stream: 'stdout' | 'stderr'; label: string }): LogFile {
  const file = new LogFileImpl(path, stream, label)
  open.add(file)
  return file
}

/** Checks that a log file can be opened for appending (creating it), without keeping it open. */
function checkLogFile(path: string, label: string): void {
  if (path === '-') return
  closeSync(openAppend(path, label))
}

/** USR1: every log file of this process is opened again. */
export function reopenLogFiles(): void {
  for (const file of open) file.reopen()
}

/** Flushes and closes every log file, waiting at most `timeoutMs` for a stuck disk. */
export async function closeLogFiles(timeoutMs = 2000): Promise<void> {
  const files = [...open]
  open.clear()
  let timer: NodeJS.Timeout | undefined
  await Promise.race([
    Promise.all(files.map((f) => f.close())),
    new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs).unref())),
  ])
  clearTimeout(timer)
}

// A process that exits without closeLogFiles (an uncaught exception,
// process.exit elsewhere) still writes what is buffered.
process.on('exit', () => {
  for (const file of open) file.flushSync()
})

function openAppend(path: string, label: string): number {
  try {
    return openSync(path, 'a')
  } catch (err) {
    // Node's message repeats the path: "ENOENT: no such file or directory, open '…'".
    throw new Error(`${label}: can't open ${path} (${(err as Error).message.replace(/, open '.*'$/s, '')})`)
  }
}

class LogFileImpl implements LogFile {
  readonly path: string
  readonly #std: NodeJS.WriteStream | undefined
  /** Where lines go once the file is closed: stdout or stderr, never nowhere. */
  readonly #fallback: NodeJS.WriteStream
  #closed = false
  readonly #label: string
  #fd: number
  #pending = ''
  #scheduled = false
  #writing = false
  #reopenWanted = false
  #idle: (() => void)[] = []
  #failing = false
  /** Lines dropped since the last report, because MAX_PENDING_BYTES were already waiting. */
  #dropped = 0

  constructor(path: string, stream: 'stdout' | 'stderr', label: string) {
    this.path = path
    this.#label = label
    this.#std = path === '-' ? process[stream] : undefined
    this.#fallback = process[stream]
    this.#fd = path === '-' ? -1 : openAppend(path, label)
  }

  write(text: string): void {
    if (this.#closed) return void this.#fallback.write(text)
    // A standard stream is written synchronously: only a file target's writes can stall behind it.
    if (!this.#std && this.#pending.length + text.length > MAX_PENDING_BYTES) {
      this.#dropped += countLines(text)
      return
    }
    this.#pending += text
    if (this.#pending.length >= EAGER_BYTES && !this.#std) this.#flush()
    else if (!this.#scheduled) {
      this.#scheduled = true
      if (this.#std) setImmediate(this.#onTick)
      // Unref'd: exiting flushes what is pending (close(), or flushSync at 'exit').
      else setTimeout(this.#onTick, FILE_FLUSH_MS).unref()
    }
  }

  #onTick = (): void => {
    this.#scheduled = false
    this.#flush()
  }

  #flush(): void {
    if (this.#pending === '') return this.#settle()
    if (this.#std) {
      const text = this.#pending
      this.#pending = ''
      for (const chunk of lineChunks(text, PIPE_BUF)) this.#std.write(chunk)
      return this.#settle()
    }
    if (this.#writing) return
    const buf = Buffer.from(this.#pending)
    this.#pending = ''
    this.#writing = true
    this.#writeOut(buf, 0)
  }

  #writeOut(buf: Buffer, offset: number): void {
    write(this.#fd, buf, offset, buf.length - offset, null, (err, n) => {
      if (err)
        this.#trouble(
          `${this.#label}: write to ${this.path} failed (${err.message}); ${buf.length - offset} bytes dropped`,
        )
      else {
        this.#failing = false
        if (offset + n < buf.length) return this.#writeOut(buf, offset + n)
        this.#reportDropped()
      }
      this.#writing = false
      if (this.#reopenWanted) this.reopen()
      // Lines that came meanwhile wait for their (unref'd) timer, unless a close() waits: then they go now,
      // or close() would wait on a timer that keeps nothing alive, and the process would end with it pending.
      if (this.#pending !== '' && (!this.#scheduled || this.#idle.length > 0)) this.#flush()
      else this.#settle()
    })
  }

  /** Wakes close() once nothing is pending or in flight. */
  #settle(): void {
    if (this.#writing || this.#pending !== '' || this.#idle.length === 0) return
    const waiters = this.#idle
    this.#idle = []
    for (const w of waiters) w()
  }

  reopen(): void {
    if (this.#std) return
    // Never close a descriptor a write is still using.
    if (this.#writing) {
      this.#reopenWanted = true
      return
    }
    this.#reopenWanted = false
    try {
      const fd = openAppend(this.path, this.#label)
      closeSync(this.#fd)
      this.#fd = fd
    } catch (err) {
      // Keep writing where we were: a line in the old file beats a lost one.
      this.#trouble(`${(err as Error).message}; still writing to the previous file`)
    }
  }

  close(): Promise<void> {
    open.delete(this)
    return new Promise<void>((resolve) => {
      this.#idle.push(resolve)
      this.#flush()
    }).then(() => {
      if (this.#fd >= 0) closeSync(this.#fd)
      this.#fd = -1
      this.#closed = true
    })
  }

  /** Last resort at exit: what is not yet in flight is written synchronously. */
  flushSync(): void {
    if (this.#pending === '') return
    const text = this.#pending
    this.#pending = ''
    try {
      if (this.#std) for (const chunk of lineChunks(text, PIPE_BUF)) this.#std.write(chunk)
      else writeSync(this.#fd, text)
    } catch {
      // Exiting anyway; nowhere left to say it.
    }
  }

  /** The writer has caught up with a write: says how many lines it had to drop meanwhile, if any. */
  #reportDropped(): void {
    if (this.#dropped === 0) return
    report(
      `${this.#label}: ${this.#dropped} line(s) dropped: writes to ${this.path} were not keeping up (${MAX_PENDING_BYTES} bytes waiting)`,
    )
    this.#dropped = 0
  }

  #trouble(message: string): void {
    // Said once per run of failures, not once per batch.
    if (this.#failing) return
    this.#failing = true
    report(message)
  }
}

function countLines(text: string): number {
  let lines = 0
  for (let nl = text.indexOf('\n'); nl >= 0; nl = text.indexOf('\n', nl + 1)) lines++
  return Math.max(lines, 1)
}

/**
 * Splits text into chunks of at most `max` bytes, cut only after a newline;
 * a single line longer than `max` is a chunk of its own.
 */
export function lineChunks(text: string, max: number): string[] {
  if (text.length <= max / 3 || Buffer.byteLength(text) <= max) return [text]
  const chunks: string[] = []
  let chunk = ''
  let bytes = 0
  let start = 0
  while (start < text.length) {
    const nl = text.indexOf('\n', start)
    const end = nl < 0 ? text.length : nl + 1
    const line = text.slice(start, end)
    const n = Buffer.byteLength(line)
    if (bytes + n > max && chunk !== '') {
      chunks.push(chunk)
      chunk = ''
      bytes = 0
    }
    chunk += line
    bytes += n
    start = end
  }
  if (chunk !== '') chunks.push(chunk)
  return chunks
}

/**
 * The master's logs: --error-logfile, when it names a file, takes the error
 * log (the master's messages and the lines its workers write to stderr);
 * --access-logfile is only checked here (the workers open it), so a path
 * that cannot be written is one line at startup, not a worker boot failure.
 */
export function openMasterLogs(settings: {
  readonly errorLogfile: string
  readonly accessLogfile: string | undefined
}): void {
  if (settings.accessLogfile !== undefined) checkLogFile(settings.accessLogfile, '--access-logfile')
  if (settings.errorLogfile === '-') return
  const file = openLogFile(settings.errorLogfile, { stream: 'stderr', label: '--error-logfile' })
  setErrorLogWriter((entry) => file.write(entry))
}
