// `corral [OPTIONS] APP` and `corral COMMAND …`: turns argv into settings,
// then runs the master. Bad input ends here, before anything is bound, with
// one line per problem and never a stack: exit 2 for a usage error, 1 for a
// pidfile held by a live master, 4 for an app that is not there.
import { existsSync } from 'node:fs'
import { resolve } from 'node:path'
import { helpText, MISSING_APP, usageError } from '../config/command-line.ts'
import { formatPrintConfig } from '../config/print-config.ts'
import { createSettingsReloader } from '../config/reload.ts'
import { loadSettings, sourcesOf } from '../config/sources.ts'
import { checkServedFiles } from '../config/system-checks.ts'
import { AppLoadError, isInstalledPackage, loadAppOnce, parseAppSpec, resolveApp } from '../http/app.ts'
import { createLogger } from '../logging/log.ts'
import { runMaster } from '../master/main.ts'
import { isDaemonChild, launchDaemon } from '../master/daemon.ts'
import { checkPidfile } from '../master/pidfile.ts'
import { runUpgrade } from './upgrade-subcommand.ts'
import { runCtl, runShortcut } from './ctl.ts'
import { runInspect } from './inspect.ts'
import { VERSION } from '../version.ts'
import { applyProcessSettings, checkProcessSettings } from '../process/process-settings.ts'
import { typeScriptProblem } from '../process/user-modules.ts'
import { checkSocketActivation } from '../master/socket-activation.ts'
import { APP_LOAD_ERROR, RUNTIME_ERROR, USAGE_ERROR } from '../protocol/exit-codes.ts'

/** `corral NAME …`: run instead of serving an app. */
const COMMANDS: Readonly<Record<string, (argv: string[]) => Promise<number>>> = {
  upgrade: runUpgrade,
  // `corral ctl …` and its shortcuts, as PM2 and pumactl users type them (src/cli/ctl.ts).
  ctl: runCtl,
  status: (argv) => runShortcut('status', argv),
  reload: (argv) => runShortcut('reload', argv),
  stop: (argv) => runShortcut('stop', argv),
  // The model playground: the inspector page running the pure machines (src/cli/inspect.ts).
  inspect: runInspect,
}

/** What `--help` adds after the options: the commands, the signals and the exit codes. */
const HELP_EPILOGUE = `
Commands:
  corral upgrade --pid PIDFILE [--timeout S]
                            Replace a running master with a new one (USR2),
                            rolling back if the new one fails. corral upgrade
                            --help for more.
  corral ctl [-s PATH] [-j] [COMMAND…]
                            Ask or steer a running master over its control
                            socket (./corral.ctl); no COMMAND: a prompt.
                            corral ctl help lists the commands; top: a live
                            view; upgrade: corral upgrade through the socket.
  corral status | reload | stop [-s PATH] [--no-wait]
                            Shortcuts: ctl show all, ctl reload, ctl shutdown;
                            reload and stop wait for the outcome (exit 1 when
                            the reload failed or was refused, or the master
                            did not stop).
  corral inspect [--serve [HOST:]PORT]
                            The model playground, with a guided tour of
                            gunicorn's design: prints the URL of a page
                            running the master and worker charts in your
                            browser (no processes); --serve serves it over
                            HTTP (loopback, a token) for ssh -L.

Signals (to the master):
  HUP   reload: re-read the config, start new workers, stop the old ones
  TERM, QUIT  graceful stop      INT  quick stop
  TTIN, TTOU  one worker more, one fewer
  USR1  reopen the log files     USR2  upgrade to a new master (re-exec)
  WINCH stop the workers, keep the master (not from a terminal's resize)

Exit codes:
  0  stopped cleanly
  1  failed at run time: a listener, the pidfile or a log file could not be
     opened, another master holds the pidfile, or the master failed
  2  usage or configuration error
  3  a worker failed to boot
  4  the app failed to load (not found, a syntax error, nothing to serve)

spec/ in the package has the whole contract (spec/README.md).
`

/** A bare word (no path separator, no extension) that names no file: taken for a command, never an app. */
const looksLikeCommand = (arg: string) => /^[a-z][a-z-]*$/.test(arg) && !existsSync(arg) && !isInstalledPackage(arg)

export async function main(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const [first, ...rest] = argv
  if (first !== undefined && Object.hasOwn(COMMANDS, first)) return COMMANDS[first]!(rest)
  if (first !== undefined && looksLikeCommand(first)) {
    const known = Object.keys(COMMANDS).join(', ')
    process.stderr.write(
      usageError([
        `unknown command ${JSON.stringify(first)} (commands: ${known}); to serve a module, give its file, e.g. app.js`,
      ]),
    )
    return USAGE_ERROR
  }
  // Defaults < config file < CORRAL_CMD_ARGS < command line (src/config/sources.ts).
  const sources = { argv, env, cwd: process.cwd() }
  const parsed = await loadSettings(sources)
  if (!parsed.ok) {
    process.stderr.write(usageError(parsed.errors))
    return USAGE_ERROR
  }
  const { settings, app } = parsed
  if (settings.help) {
    process.stdout.write(helpText() + HELP_EPILOGUE)
    return 0
  }
  if (settings.version) {
    process.stdout.write(`corral ${VERSION}\n`)
    return 0
  }
  if (settings.printConfig) {
    process.stdout.write(formatPrintConfig(settings))
    return 0
  }
  if (app === undefined) {
    process.stderr.write(usageError([MISSING_APP]))
    return USAGE_ERROR
  }
  // --chdir, -u/-g/--initgroups: checked against this system; then --chdir,
  // --umask and --env are applied to this process (src/process/process-settings.ts).
  const checked = checkProcessSettings(settings)
  const applied = checked.length > 0 ? checked : applyProcessSettings(settings)
  // What the workers open (read from the --chdir directory, as they read it), and socket activation.
  const problems = applied.length > 0 ? applied : [...checkServedFiles(settings), ...checkSocketActivation(settings)]
  if (problems.length > 0) {
    process.stderr.write(usageError(problems))
    return USAGE_ERROR
  }
  const log = createLogger({ level: settings.logLevel })
  if (settings.checkConfig) return checkConfig(app, log)
  // The app's module (a file, a directory's main, a package), before anything is bound: what is in it, the workers find out.
  let appFile: string
  try {
    appFile = resolveApp(parseAppSpec(app)).file
  } catch (err) {
    if (!(err instanceof AppLoadError)) throw err
    log.error(`App failed to load: ${err.message}`)
    return APP_LOAD_ERROR
  }
  const typeScript = typeScriptProblem(appFile, process.cwd())
  if (typeScript !== undefined) {
    log.error(`App failed to load: ${appFile}: ${typeScript}`)
    return APP_LOAD_ERROR
  }
  if (settings.pid !== undefined) {
    const pidfile = checkPidfile(resolve(settings.pid))
    if (pidfile && 'problem' in pidfile) {
      log.error(pidfile.problem)
      return RUNTIME_ERROR
    }
    if (pidfile) log.warning(`Removed a stale pidfile ${settings.pid} (${pidfile.stale}: not running)`)
  }
  if (settings.daemon && !isDaemonChild(env)) return launchDaemon((settings as { errorLogfile?: string }).errorLogfile)
  return runMaster({
    settings,
    app,
    reloadSettings: createSettingsReloader(sources, parsed),
    sourcesOf,
  })
}

/** Settings are valid (we got here); now make sure the app imports and is servable. */
async function checkConfig(app: string, log: ReturnType<typeof createLogger>): Promise<number> {
  try {
    await loadAppOnce(app, log)
    process.stdout.write(`corral: configuration OK; ${app} loads\n`)
    return 0
  } catch (err) {
    if (err instanceof AppLoadError) log.error(`App failed to load: ${err.message}`)
    else log.exception('App failed to load', err)
    return APP_LOAD_ERROR
  }
}
