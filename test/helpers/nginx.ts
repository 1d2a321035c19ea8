// A real nginx for end-to-end tests: its own prefix directory (config, pid,
// logs and temp paths), one process, no daemon, started and waited for until
// it listens. Each test gives the parts of the config that are about corral.
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { track } from './corral.ts'
import { listening } from './sockets.ts'

/** Debian puts it in /usr/sbin, which may not be on PATH. */
export const NGINX = ['/usr/sbin/nginx', '/usr/bin/nginx'].find((p) => existsSync(p))

export interface NginxConfig {
  /** The http block's own directives (upstreams, servers). */
  readonly http: string
  /** A stream block, if any (then give `modules` its module). */
  readonly stream?: string
  readonly modules?: readonly string[]
  readonly workerConnections: number
  readonly errorLevel: 'info' | 'warn'
}

/**
 * Writes `dir`/nginx.conf and starts nginx on it; resolves once it accepts on
 * every port in `ports`, rejects with its error log if it exits or does not
 * come up. The process is tracked, so it is killed when the test ends.
 */
export async function startNginx(dir: string, config: NginxConfig, ports: readonly number[]): Promise<ChildProcess> {
  if (!NGINX) throw new Error('nginx is not installed: apt-get install nginx-light (.ci/run does)')
  mkdirSync(join(dir, 'tmp'), { recursive: true })
  const temp = ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((t) => `  ${t}_temp_path ${dir}/tmp/${t};`)
  writeFileSync(
    join(dir, 'nginx.conf'),
    [
      'daemon off;',
      'master_process off;',
      'worker_processes 1;',
      `pid ${dir}/nginx.pid;`,
      `error_log ${dir}/error.log ${config.errorLevel};`,
      ...(config.modules ?? []).map((m) => `load_module ${m};`),
      `events { worker_connections ${config.workerConnections}; }`,
      'http {',
      '  access_log off;',
      ...temp,
      config.http,
      '}',
      ...(config.stream === undefined ? [] : ['stream {', config.stream, '}']),
      '',
    ].join('\n'),
  )
  const nginx = spawn(NGINX, ['-p', dir, '-e', `${dir}/error.log`, '-c', `${dir}/nginx.conf`], {
    stdio: ['ignore', 'ignore', 'pipe'],
  })
  track(nginx.pid!)
  let stderr = ''
  nginx.stderr!.on('data', (c: Buffer) => (stderr += c.toString()))
  const up = async () => (await Promise.all(ports.map(listening))).every(Boolean)
  // No clock of its own: nginx that cannot start exits, and the test's timeout bounds a slow machine.
  while (!(await up())) {
    if (nginx.exitCode !== null) {
      const log = existsSync(`${dir}/error.log`) ? readFileSync(`${dir}/error.log`, 'utf8') : ''
      throw new Error(`nginx did not start: ${stderr}${log}`)
    }
    await new Promise((r) => setTimeout(r, 50))
  }
  return nginx
}
