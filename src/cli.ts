// `corral [OPTIONS] APP`: turns argv into settings, then runs the master.
// Bad input ends here with exit 2 and one line per problem, never a stack.
import { helpText, parseArgs, usageError } from './cli-args.ts'
import { AppLoadError, importApp, parseAppSpec, toHandler } from './app.ts'
import { createLogger } from './log.ts'
import { runMaster } from './master.ts'
import { VERSION } from './version.ts'

export const EXIT_USAGE = 2
export const EXIT_APP_LOAD = 4

export async function main(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const parsed = parseArgs(argv, env)
  if (!parsed.ok) {
    process.stderr.write(usageError(parsed.errors))
    return EXIT_USAGE
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
  if (app === undefined) {
    process.stderr.write(usageError(['missing APP: the module to serve, e.g. corral app.ts']))
    return EXIT_USAGE
  }
  if (settings.checkConfig) return checkConfig(app, settings.logLevel)
  return runMaster({ settings, app })
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
    return EXIT_APP_LOAD
  }
}
