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
