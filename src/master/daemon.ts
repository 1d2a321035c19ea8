// -D/--daemon: the launching command starts the master detached (a new
// session, no terminal on any stdio), waits until it is serving, and returns;
// or fails with the reason the master gave. The master learns it is the
// daemon from CORRAL_DAEMONIZED and does not detach again (nor does a master
// it re-execs on USR2, which inherits the variable and the same argv).
import { spawn } from 'node:child_process'
import { START_CWD } from '../process/process-settings.ts'
import { openSync } from 'node:fs'
import { NOTIFY_ENV } from './reexec.ts'
import { RUNTIME_ERROR } from '../protocol/exit-codes.ts'

const DAEMONIZED_ENV = 'CORRAL_DAEMONIZED'

export const isDaemonChild = (env: NodeJS.ProcessEnv = process.env) => env[DAEMONIZED_ENV] === '1'

/** Messages a master waiting to be ready sends its launcher. */
type LauncherMessage = { t: 'master-ready'; pid: number } | { t: 'log'; line: string }

/** Starts the daemon; resolves with the launcher's exit code. */
export function launchDaemon(errorLogfile: string | undefined, timeoutMs = 60_000): Promise<number> {
  // The master's error log, where the daemon's stdout and stderr go too.
  const out = errorLogfile && errorLogfile !== '-' ? openSync(errorLogfile, 'a') : 'ignore'
  const child = spawn(process.execPath, [...process.execArgv, ...process.argv.slice(1)], {
    // Where corral was started, before --chdir: the argv's relative paths mean the same again.
    cwd: START_CWD,
    detached: true,
    stdio: ['ignore', out, out, 'ipc'],
    env: { ...process.env, [DAEMONIZED_ENV]: '1', [NOTIFY_ENV]: '1' },
  })
  const said: string[] = []
  return new Promise((resolve) => {
    const finish = (code: number, message: string) => {
      clearTimeout(timer)
      child.removeAllListeners()
      if (child.connected) child.disconnect()
      child.unref()
      ;(code === 0 ? process.stdout : process.stderr).write(message)
      resolve(code)
    }
    const timer = setTimeout(
      () =>
        finish(
          RUNTIME_ERROR,
          `corral: the daemon (pid ${child.pid}) was not serving after ${timeoutMs / 1000} s; it is still running\n`,
        ),
      timeoutMs,
    )
    child.on('message', (m: LauncherMessage) => {
      if (m.t === 'log') said.push(m.line)
      else if (m.t === 'master-ready') finish(0, `corral: daemon serving, master pid ${m.pid}\n`)
    })
    child.on('exit', (code, signal) => {
      const why = said.length
        ? `:\n${said.map((l) => `  ${l}`).join('\n')}`
        : errorLogfile
          ? ` (see ${errorLogfile})`
          : ''
      finish(
        code || RUNTIME_ERROR,
        `corral: the daemon exited ${signal ? `on ${signal}` : `with code ${code}`} before serving${why}\n`,
      )
    })
  })
}

/** While a launcher waits, the master tells it what went wrong, line by line. */
export function reportToLauncher(line: string): void {
  if (process.env[NOTIFY_ENV] === '1' && process.send && process.connected)
    process.send({ t: 'log', line } satisfies LauncherMessage)
}
