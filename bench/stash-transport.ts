// Which way a worker should reach the master's stash (spec/stash.md, "Where
// it lives"): the same get, 32 calls in flight, from a child process to its
// parent over (1) the IPC channel workers already have (JSON, as corral's
// is), (2) that channel with advanced (structured clone) serialization, and
// (3) the stash's own unix socket. Short rounds, the three interleaved, on a
// machine other work may be loading: the figure that matters is CPU time
// per call (parent and child, from process.cpuUsage), which the load moves
// far less than calls per second.
//   node bench/stash-transport.ts [ms per round] [rounds]
import { fork } from 'node:child_process'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { fileURLToPath } from 'node:url'
import { createLogger } from '../src/logging/log.ts'
import { stashClient } from '../src/stash/client.ts'
import { startStash } from '../src/stash/server.ts'

const MS = Number(process.argv[2] ?? 1500)
const ROUNDS = Number(process.argv[3] ?? 3)
const IN_FLIGHT = 32
const VALUE = { id: 12345, name: 'user-12345', roles: ['reader', 'writer'], note: 'x'.repeat(64) }

if (process.argv[2] === 'child') {
  const how = process.argv[3] as 'ipc-json' | 'ipc-advanced' | 'socket'
  let calls = 0
  const cpu = process.cpuUsage()
  const end = performance.now() + Number(process.argv[4])
  let get: (key: string) => Promise<unknown>
  if (how === 'socket') {
    const t = stashClient(process.argv[5]).table('t')
    get = (key) => t.get(key)
  } else {
    const pending = new Map<number, (v: unknown) => void>()
    let next = 0
    process.on('message', (m: { i: number; v: unknown }) => {
      pending.get(m.i)?.(m.v)
      pending.delete(m.i)
    })
    get = (k) =>
      new Promise((resolve) => {
        const i = next++
        pending.set(i, resolve)
        process.send?.({ i, t: 't', k })
      })
  }
  await Promise.all(
    Array.from({ length: IN_FLIGHT }, async () => {
      while (performance.now() < end) {
        await get('k')
        calls++
      }
    }),
  )
  const used = process.cpuUsage(cpu)
  process.send?.({ done: calls, cpuUs: used.user + used.system })
  process.disconnect()
} else {
  const stash = await startStash({ maxBytes: 1 << 20, log: createLogger({ level: 'critical' }) })
  const seed = stashClient(stash.path)
  await seed.table('t').set('k', VALUE)
  const held = new Map([['k', VALUE]])
  const me = fileURLToPath(import.meta.url)
  const transports = ['ipc-json', 'ipc-advanced', 'socket'] as const
  const totals = new Map(transports.map((t) => [t, { calls: 0, ms: 0, parentUs: 0, childUs: 0 }]))
  const lags = new Map(transports.map((t) => [t, monitorEventLoopDelay({ resolution: 5 })]))
  for (let r = 0; r < ROUNDS; r++) {
    for (const how of transports) {
      const lag = lags.get(how)!
      const total = totals.get(how)!
      const child = fork(me, ['child', how, String(MS), stash.path], {
        serialization: how === 'ipc-advanced' ? 'advanced' : 'json',
      })
      const parentCpu = process.cpuUsage()
      const started = performance.now()
      lag.enable()
      const done = await new Promise<{ done: number; cpuUs: number }>((resolve) => {
        child.on('message', (m: { i: number; k: string; done?: number; cpuUs?: number }) => {
          if (m.done !== undefined) resolve(m as { done: number; cpuUs: number })
          else child.send({ i: m.i, v: held.get(m.k) })
        })
      })
      lag.disable()
      const used = process.cpuUsage(parentCpu)
      total.calls += done.done
      total.ms += performance.now() - started
      total.parentUs += used.user + used.system
      total.childUs += done.cpuUs
      await new Promise((resolve) => (child.exitCode === null ? child.once('exit', resolve) : resolve(null)))
    }
  }
  console.log(`one child, ${IN_FLIGHT} gets in flight; ${ROUNDS} rounds of ${MS} ms, the transports interleaved`)
  console.log(
    '| transport | gets/s | parent (master) CPU µs per get | child (worker) CPU µs per get | parent lag p99 ms |',
  )
  console.log('|---|---|---|---|---|')
  for (const how of transports) {
    const t = totals.get(how)!
    const lag = lags.get(how)!.percentile(99) / 1e6
    console.log(
      `| ${how} | ${Math.round(t.calls / (t.ms / 1000))} | ${(t.parentUs / t.calls).toFixed(1)} | ${(t.childUs / t.calls).toFixed(1)} | ${lag.toFixed(2)} |`,
    )
  }
  seed.close()
  await stash.stop()
}
