// Many reloads in a row (issue 14, faults): every HUP's reload completes or is
// coalesced into one already queued, the master's open fds come back to where
// they were, and no worker of an old generation outlives its reload. The
// memory figures over 1 000 HUPs are bench/hup-soak.ts's (spec/reliability.md).
import { readdirSync } from 'node:fs'
import { afterEach, expect, it } from 'vitest'
import { fixture, freePort, isAlive, killAll, startCorral, waitFor, type Corral } from './helpers/corral.ts'
import { get } from './helpers/load.ts'

afterEach(killAll)

const count = (corral: Corral, pattern: RegExp) => corral.log().match(new RegExp(pattern, 'g'))?.length ?? 0
const openFds = (pid: number) => readdirSync(`/proc/${pid}/fd`).length
const booted = (corral: Corral) =>
  [...corral.log().matchAll(/Booting worker with pid: (\d+)/g)].map((m) => Number(m[1]))

/** The reload in flight is over and only the serving generation is left: 2 workers, every older one gone. */
async function settled(corral: Corral): Promise<void> {
  await waitFor(
    () => {
      const live = corral.workers()
      return live.length === 2 && booted(corral).every((pid) => live.includes(pid) || !isAlive(pid))
    },
    { what: 'only the serving generation left' },
  )
}

it('29 HUPs (20 one after another, 9 in bursts of 3): each completes or is coalesced, fds back to where they were, no orphan', async ({
  signal,
}) => {
  const port = await freePort()
  const corral = startCorral(['-w', '2', '-b', `127.0.0.1:${port}`, fixture('app-pid.ts')], { signal })
  await corral.untilReady()

  const reloadOnce = async () => {
    await corral.hup()
    await settled(corral)
  }
  // The baseline after one reload: the first opens what every later one reuses.
  await reloadOnce()
  const fdsAtFirst = openFds(corral.pid)
  for (let i = 1; i < 20; i++) await reloadOnce()

  // Bursts: a HUP during a reload is queued, and a third one joins the queued one. Each is sent once the
  // previous is handled: the kernel merges a signal sent while the same one is still pending.
  const hup = async () => {
    const handled = count(corral, /Handling signal: hup/)
    corral.signal('SIGHUP')
    await waitFor(() => count(corral, /Handling signal: hup/) > handled, { what: 'the HUP handled' })
  }
  for (let burst = 0; burst < 3; burst++) {
    const from = corral.log().length
    await hup()
    await corral.waitForLog(/Reloading: starting worker generation/, { from })
    await hup()
    await hup()
    await waitFor(() => count(corral, /Reload complete/) === count(corral, /Reloading: starting worker generation/), {
      what: 'every reload started completed',
      timeoutMs: 20_000,
    })
    await settled(corral)
  }

  const hups = count(corral, /Handling signal: hup/)
  const started = count(corral, /Reloading: starting worker generation/)
  const coalesced = count(corral, /Reload already queued/)
  expect(hups).toBe(29)
  expect(count(corral, /Reload complete/)).toBe(started)
  expect(started + coalesced).toBe(hups)
  expect(coalesced).toBeGreaterThan(0)
  // A generation of 2 workers per reload started, and the first.
  expect(booted(corral)).toHaveLength(2 * (started + 1))
  await waitFor(() => openFds(corral.pid) <= fdsAtFirst, { what: `fds back to ${fdsAtFirst}` })
  expect((await get(`http://127.0.0.1:${port}`)).status).toBe(200)

  corral.signal('SIGTERM')
  expect((await corral.exited).code).toBe(0)
  expect(booted(corral).filter(isAlive)).toEqual([])
}, 120_000)
