// A production config: `corral -c examples/corral.config.ts app.ts`, or name
// it corral.config.ts in the directory corral starts in. Every key is in
// spec/settings.md; CORRAL_CMD_ARGS and the command line override any of them
// (`corral --print-config` shows which source won). HUP re-reads this file.
import { availableParallelism } from 'node:os'
import { defineConfig } from 'corral'

const env = process.env

export default defineConfig({
  // Behind a reverse proxy on the same host; PORT as platforms set it.
  bind: [`127.0.0.1:${env['PORT'] ?? '8000'}`],
  // One worker per core, or what the platform says (WEB_CONCURRENCY).
  workers: Number(env['WEB_CONCURRENCY'] ?? availableParallelism()),
  // A worker stuck this long is killed, with the stack it was stuck in logged.
  timeout: 30,
  // Deploys send HUP: in-flight requests get this long to finish.
  gracefulTimeout: 20,
  logLevel: env['NODE_ENV'] === 'production' ? 'info' : 'debug',
  // Where a service manager or `corral upgrade` finds the master.
  pid: env['PIDFILE'] ?? '/tmp/example-api.pid',
  name: 'example-api',
})
