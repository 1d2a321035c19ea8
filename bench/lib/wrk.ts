// Running wrk pinned to a CPU and reading its summary.
import { run } from './proc.ts'

export interface WrkResult {
  rps: number
  requests: number
  seconds: number
  errors: { connect: number; read: number; write: number; timeout: number; non2xx: number }
}

export interface WrkOptions {
  port: number
  cpu: string
  connections: number
  seconds: number
  /** A new TCP connection for every request (wrk sends `Connection: close`, the server closes). */
  close: boolean
}

export async function wrk(o: WrkOptions): Promise<WrkResult> {
  const args = ['-c', o.cpu, 'wrk', '-t1', `-c${o.connections}`, `-d${o.seconds}s`]
  if (o.close) args.push('-H', 'Connection: close')
  args.push(`http://127.0.0.1:${o.port}/`)
  const { code, out } = await run('taskset', args, { timeoutMs: (o.seconds + 20) * 1000 })
  if (code !== 0) throw new Error(`wrk exited with ${code}:\n${out}`)
  return parseWrk(out)
}

function parseWrk(out: string): WrkResult {
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(out)
  const total = /(\d+) requests in ([\d.]+)(ms|s|m)/.exec(out)
  if (!rps || !total) throw new Error(`cannot read wrk output:\n${out}`)
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out)
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(out)
  const unit = total[3] === 'ms' ? 0.001 : total[3] === 'm' ? 60 : 1
  return {
    rps: Number(rps[1]),
    requests: Number(total[1]),
    seconds: Number(total[2]) * unit,
    errors: {
      connect: Number(sock?.[1] ?? 0),
      read: Number(sock?.[2] ?? 0),
      write: Number(sock?.[3] ?? 0),
      timeout: Number(sock?.[4] ?? 0),
      non2xx: Number(non2xx?.[1] ?? 0),
    },
  }
}
