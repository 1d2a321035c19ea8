// `corral [OPTIONS] APP`: turns argv into settings, then runs the master.
// Bad input ends here with exit 2 and one line per problem, never a stack.
import { helpText, usageError } from '../config/command-line.ts'
import { createSettingsReloader, formatPrintConfig, loadSettings } from '../config/sources.ts'
import { AppLoadError, importApp, parseAppSpec, toHandler } from '../http/app.ts'
import { createLogger } from '../logging/log.ts'
import { runMaster } from '../master/main.ts'
import { isDaemonChild, launchDaemon } from '../master/daemon.ts'
import { runUpgrade } from './upgrade-subcommand.ts'
import { VERSION } from '../version.ts'
import { applyProcessSettings, checkProcessSettings } from '../process/process-settings.ts'
import { checkTlsSettings } from '../http/tls.ts'
import { checkSocketActivation } from '../master/socket-activation.ts'
import { APP_LOAD_ERROR, USAGE_ERROR } from '../protocol/exit-codes.ts'

export async function main(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  if (argv[0] === 'upgrade') return runUpgrade(argv.slice(1))
  // Defaults < config file < CORRAL_CMD_ARGS < command line (src/config/sources.ts).
  const sources = { argv, env, cwd: process.cwd() }
  const parsed = await loadSettings(sources)
  if (!parsed.ok) {
    process.stderr.write(usageError(parsed.errors))
    return USAGE_ERROR
  }
  const { settings, app } = parsed
  if (settings.help) {
    process.stdout.write(helpText())
    return 0
  }
  if (settings.version) {
    process.stdout.write(`corral ${VERSION}\n`)
    return 0
  }
  if (settings.printConfig) {
    process.stdout.write(formatPrintConfig(settings, parsed.sources))
    return 0
  }
  if (app === undefined) {
    process.stderr.write(usageError(['missing APP: the module to serve, e.g. corral app.ts']))
    return USAGE_ERROR
  }
  // --chdir, -u/-g/--initgroups: checked against this system; then --chdir,
  // --umask and --env are applied to this process (src/process/process-settings.ts).
  const checked = checkProcessSettings(settings)
  const applied = checked.length > 0 ? checked : applyProcessSettings(settings)
  // TLS files (read from the --chdir directory, as the workers read them) and socket activation.
  const problems = applied.length > 0 ? applied : [...checkTlsSettings(settings), ...checkSocketActivation(settings)]
  if (problems.length > 0) {
    process.stderr.write(usageError(problems))
    return USAGE_ERROR
  }
  if (settings.checkConfig) return checkConfig(app, settings.logLevel)
  if (settings.daemon && !isDaemonChild(env)) return launchDaemon((settings as { errorLogfile?: string }).errorLogfile)
  return runMaster({ settings, app, reloadSettings: createSettingsReloader(sources, parsed) })
}

/** Settings are valid (we got here); now make sure the app imports and is servable. */
async function checkConfig(app: string, level: Parameters<typeof createLogger>[0]['level']): Promise<number> {
  const log = createLogger({ level })
  try {
    await toHandler(await importApp(parseAppSpec(app)), log)
    process.stdout.write(`corral: configuration OK; ${app} loads\n`)
    return 0
  } catch (err) {
    if (err instanceof AppLoadError) log.error(`App failed to load: ${err.message}`)
    else log.exception('App failed to load', err)
    return APP_LOAD_ERROR
  }
}
