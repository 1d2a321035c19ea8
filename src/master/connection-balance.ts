// The master's half of --balance-slack (spec/worker-limits.md): it gathers
// the connection counts the workers report and tells each worker what the
// others hold (in all, and the most any one holds), so a worker can tell
// when it holds more than its share and stop accepting (the policy is balanceCap in src/worker/accept-gate.ts). Nothing here
// is on the request path: workers report at most every 100 ms, and only
// when their count changed.
import type { ChildProcess } from 'node:child_process'
import type { BalanceMessage, LoadMessage } from '../protocol/master-worker.ts'

/** The longest the master sits on a changed count before passing it on. */
const PUBLISH_MS = 100

interface Load {
  open: number
  paused: boolean
  /** What this worker was last told, so an unchanged picture is not sent again. */
  told?: string
}

/** Balancing workers (those that report), by process. */
const loads = new Map<ChildProcess, Load>()
let soon: NodeJS.Immediate | undefined
let later: NodeJS.Timeout | undefined

/** Follows one worker's reports; the pool calls it once per spawned worker. */
export function balanceConnections(child: ChildProcess): void {
  child.on('message', (message: Partial<LoadMessage> | null) => {
    if (message?.t !== 'load' || typeof message.open !== 'number') return
    if (message.state === 'leaving') return forget(child)
    const known = loads.get(child)
    loads.set(child, { open: message.open, paused: message.state === 'paused', told: known?.told })
    // A new worker changes everyone's share; every worker paused means no one
    // accepts until they hear fresh counts: both are passed on at once.
    if (!known || (message.state === 'paused' && [...loads.values()].every((load) => load.paused))) publishSoon()
    else later ??= setTimeout(publish, PUBLISH_MS).unref()
  })
  child.on('exit', () => forget(child))
}

function forget(child: ChildProcess): void {
  if (loads.delete(child)) publishSoon()
}

function publishSoon(): void {
  soon ??= setImmediate(publish)
}

function publish(): void {
  clearImmediate(soon)
  clearTimeout(later)
  soon = later = undefined
  let total = 0
  // The two largest counts: the largest among the others is the second for the worker that holds the first.
  let first = 0
  let second = 0
  for (const { open } of loads.values()) {
    total += open
    if (open > first) [first, second] = [open, first]
    else if (open > second) second = open
  }
  for (const [child, load] of loads) {
    const most = load.open === first ? second : first
    const message: BalanceMessage = { t: 'balance', others: total - load.open, most, workers: loads.size }
    const told = `${message.others} ${most} ${message.workers}`
    if (told === load.told || !child.connected) continue
    load.told = told
    child.send(message)
  }
}
