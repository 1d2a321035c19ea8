// gunicorn-style error log:
//   [2026-11-27 02:04:11 +0000] [4242] [INFO] Listening at: http://127.0.0.1:8000 (4242)

export const LOG_LEVELS = ['debug', 'info', 'warning', 'error', 'critical'] as const
export type LogLevel = (typeof LOG_LEVELS)[number]

export interface Logger {
  readonly debug: (msg: string) => void
  readonly info: (msg: string) => void
  readonly warning: (msg: string) => void
  readonly error: (msg: string) => void
  readonly critical: (msg: string) => void
  /** Logs `msg` at ERROR, then the error's stack (or `String(err)`) on the following lines. */
  readonly exception: (msg: string, err: unknown) => void
}

export interface LoggerOptions {
  readonly level: LogLevel
  readonly pid?: number
  /** Receives each whole entry, newline included. Defaults to the error log (stderr unless redirected). */
  readonly write?: (entry: string) => void
}

const pad2 = (n: number) => (n < 10 ? `0${n}` : String(n))

/** `%Y-%m-%d %H:%M:%S %z` in local time. */
export function formatTimestamp(d: Date): string {
  const offset = -d.getTimezoneOffset()
  const abs = Math.abs(offset)
  return (
    `${d.getFullYear()}-${pad2(d.getMonth() + 1)}-${pad2(d.getDate())} ` +
    `${pad2(d.getHours())}:${pad2(d.getMinutes())}:${pad2(d.getSeconds())} ` +
    `${offset < 0 ? '-' : '+'}${pad2(Math.floor(abs / 60))}${pad2(abs % 60)}`
  )
}

const noop = (_msg: string): void => {}

// Where the error log goes: stderr until --error-logfile names a file
// (src/logging/log-file.ts). Loggers write through this, so one made before the file
// was opened follows it.
let errorLog = (entry: string): void => void process.stderr.write(entry)

/** Sends the error log (every default-writing logger, forwarded worker lines) elsewhere. */
export function setErrorLogWriter(write: (entry: string) => void): void {
  errorLog = write
}

/** Writes whole entries (newline included) to the error log. */
export const writeErrorLog = (entry: string): void => errorLog(entry)

export function createLogger(options: LoggerOptions): Logger {
  const write = options.write ?? writeErrorLog
  const pidPart = `] [${options.pid ?? process.pid}] [`
  const threshold = LOG_LEVELS.indexOf(options.level)

  // The timestamp only changes once a second; format it once per second.
  let stampSecond = -1
  let stamp = ''
  const timestamp = (): string => {
    const now = Date.now()
    const second = Math.floor(now / 1000)
    if (second !== stampSecond) {
      stampSecond = second
      stamp = formatTimestamp(new Date(now))
    }
    return stamp
  }

  // Levels below the threshold get a no-op, so a disabled call costs nothing.
  const at = (level: LogLevel): ((msg: string) => void) => {
    if (LOG_LEVELS.indexOf(level) < threshold) return noop
    const tail = `${pidPart}${level.toUpperCase()}] `
    return (msg) => write(`[${timestamp()}${tail}${msg}\n`)
  }

  const error = at('error')
  return {
    debug: at('debug'),
    info: at('info'),
    warning: at('warning'),
    error,
    critical: at('critical'),
    exception:
      error === noop
        ? noop
        : (msg, err) => error(`${msg}\n${err instanceof Error && err.stack !== undefined ? err.stack : String(err)}`),
  }
}
