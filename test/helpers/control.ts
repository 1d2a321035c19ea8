// One request over a master's control socket, as spec/control.md describes
// the wire: a JSON line out, a JSON line back. For the tests that read a
// master's state through the socket rather than through `corral ctl`.
import { connect } from 'node:net'
import type { ControlData, ControlResponse } from '../../src/protocol/control.ts'

export function ask(socket: string, command: string[], v = 1): Promise<ControlResponse> {
  return new Promise((resolve, reject) => {
    const c = connect(socket)
    let text = ''
    c.setEncoding('utf8')
    c.on('connect', () => c.write(`${JSON.stringify({ v, id: 7, command })}\n`))
    c.on('data', (chunk: string) => {
      text += chunk
      if (text.includes('\n')) {
        c.end()
        resolve(JSON.parse(text) as ControlResponse)
      }
    })
    c.on('error', reject)
    // A master that exits between accepting and answering closes the connection: no answer is coming.
    c.on('close', () => reject(new Error(`${socket}: closed before an answer to ${command.join(' ')}`)))
  })
}

/** The data of a successful answer of kind `kind`; a refusal or another kind throws, saying which. */
export async function answer<K extends ControlData['kind']>(
  socket: string,
  command: string[],
  kind: K,
): Promise<Extract<ControlData, { kind: K }>> {
  const r = await ask(socket, command)
  if (!r.ok) throw new Error(`${command.join(' ')}: ${r.error}`)
  if (r.data.kind !== kind) throw new Error(`${command.join(' ')}: a ${r.data.kind} answer, not ${kind}`)
  return r.data as Extract<ControlData, { kind: K }>
}

/**
 * Asks the master `command` until `probe` accepts its answer, and returns
 * what the probe returned: a test waits on the state the master reports,
 * not on a log line or a guess of how long. A socket not there yet, or a
 * master between answers, is asked again. No clock of its own: the test's
 * timeout ends the wait, through its signal.
 */
export async function untilMaster<K extends ControlData['kind'], T>(
  socket: string,
  command: string[],
  kind: K,
  probe: (data: Extract<ControlData, { kind: K }>) => T | undefined | false,
  signal: AbortSignal,
): Promise<T> {
  for (;;) {
    signal.throwIfAborted()
    const data = await answer(socket, command, kind).catch(() => undefined)
    const accepted = data === undefined ? undefined : probe(data)
    if (accepted !== undefined && accepted !== false) return accepted
    await new Promise((r) => setTimeout(r, 50))
  }
}

/** The master's `show machine` once it says all its workers serve. */
export const untilReady = (socket: string, signal: AbortSignal) =>
  untilMaster(socket, ['show', 'machine'], 'machine', ({ machine }) => machine.ready && machine, signal)
