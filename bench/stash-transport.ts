// Which way a worker should reach the master's stash (spec/stash.md, "Where
// it lives"): the same get, 32 calls in flight, from a child process to its
// parent over (1) the IPC channel workers already have (JSON, as corral's
// is), (2) that channel with advanced (structured clone) serialization, and
// (3) the stash's own unix socket. Prints calls per second and the parent's
// event-loop lag p99 for each.
//   node bench/stash-transport.ts [ms]
import { fork } from 'node:child_process'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { fileURLToPath } from 'node:url'
import { createLogger } from '../src/logging/log.ts'
import { stashClient } from '../src/stash/client.ts'
import { startStash } from '../src/stash/server.ts'

const MS = Number(process.argv[2] ?? 2000)
const IN_FLIGHT = 32
const VALUE = { id: 12345, name: 'user-12345', roles: ['reader', 'writer'], note: 'x'.repeat(64) }

if (process.argv[2] === 'child') {
  const how = process.argv[3] as 'ipc-json' | 'ipc-advanced' | 'socket'
  let calls = 0
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
  process.send?.({ done: calls })
  process.disconnect()
} else {
  const stash = await startStash({ maxBytes: 1 << 20, log: createLogger({ level: 'critical' }) })
  const seed = stashClient(stash.path)
  await seed.table('t').set('k', VALUE)
  const held = new Map([['k', VALUE]])
  const me = fileURLToPath(import.meta.url)
  console.log(
    `one child, ${IN_FLIGHT} gets in flight, ${MS} ms each (a loaded machine: compare the rows, not the figures)`,
  )
  console.log('| transport | gets/s | parent lag p99 ms |')
  console.log('|---|---|---|')
  for (const how of ['ipc-json', 'ipc-advanced', 'socket'] as const) {
    const lag = monitorEventLoopDelay({ resolution: 5 })
    lag.enable()
    const child = fork(me, ['child', how, String(MS), stash.path], {
      serialization: how === 'ipc-advanced' ? 'advanced' : 'json',
    })
    const calls = await new Promise<number>((resolve) => {
      child.on('message', (m: { i: number; k: string; done?: number }) => {
        if (m.done !== undefined) resolve(m.done)
        else child.send({ i: m.i, v: held.get(m.k) })
      })
    })
    lag.disable()
    console.log(`| ${how} | ${Math.round(calls / (MS / 1000))} | ${(lag.percentile(99) / 1e6).toFixed(2)} |`)
  }
  seed.close()
  await stash.stop()
}
