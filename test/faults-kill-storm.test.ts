// kill -9 of random workers every 0.5 s under load (issue 14, faults): the
// master survives, replaces every killed worker exactly once (as soon as the
// crash-loop back-off allows), and the requests that fail are no more than
// the connections the killed workers held when they died. `npm run faults`
// runs the full storm (30 kills: 15 s); `npm test` a short one (8 kills).
import { afterEach, expect, it } from 'vitest'
import { MAX_BACKOFF_MS } from '../machines/master-workers.ts'
import { fixture, freePort, isAlive, killAll, startCorral, waitFor } from './helpers/corral.ts'
import { startLoad } from './helpers/load.ts'
import { hasSs, serverSideOwners } from './helpers/sockets.ts'

afterEach(killAll)

const KILLS = Number(process.env.CORRAL_FAULT_KILLS ?? 8)
const WORKERS = 3
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

for (const keepAlive of [false, true]) {
  it.skipIf(!hasSs())(
    `${KILLS} workers killed with SIGKILL, one every 0.5 s, under load (${keepAlive ? 'keep-alive' : 'a new connection per request'})`,
    async ({ signal, annotate }) => {
      const port = await freePort()
      const corral = startCorral(['-w', String(WORKERS), '-b', `127.0.0.1:${port}`, fixture('app-pid.ts')], { signal })
      await corral.untilReady()
      const load = startLoad(`http://127.0.0.1:${port}/`, { connections: 6, keepAlive })
      await load.more(100)

      let held = 0
      const killed: number[] = []
      for (let i = 0; i < KILLS; i++) {
        // Every worker dead and the back-off running: the next victim is the first one back.
        const live = await waitFor(() => corral.workers().length > 0 && corral.workers(), {
          what: 'a live worker',
          timeoutMs: 20_000,
        })
        const victim = live[Math.floor(Math.random() * live.length)]!
        // Stopped first, so that what it holds cannot change between the count and the kill.
        process.kill(victim, 'SIGSTOP')
        held += serverSideOwners(port).filter((owner) => owner === String(victim)).length
        process.kill(victim, 'SIGKILL')
        killed.push(victim)
        await sleep(500)
      }
      const storm = load.seen()
      const failedInStorm = storm.failed
      // Back to full strength: each killed worker replaced once, no more.
      await waitFor(() => corral.workers().length === WORKERS, { what: `${WORKERS} workers again`, timeoutMs: 20_000 })
      await load.more(100)
      const result = await load.stop()

      // The figures for spec/reliability.md.
      await annotate(
        `${KILLS} kills: ${failedInStorm} failed requests, ${held} connections held by the killed workers, ${result.ok} answered`,
      )
      expect(isAlive(corral.pid)).toBe(true)
      expect(killed.filter(isAlive)).toEqual([])
      for (const pid of killed) expect(corral.log()).toContain(`Worker (pid:${pid}) was sent SIGKILL`)
      expect(corral.log().match(/Booting worker with pid/g)).toHaveLength(WORKERS + KILLS)
      // Requests failed only on connections a killed worker held, and none once the workers are back.
      expect(failedInStorm).toBeLessThanOrEqual(held)
      expect(result.failed).toBe(failedInStorm)
      expect(result.ok).toBeGreaterThan(0)
    },
    // Young workers killed over and over make a crash streak: each respawn may wait the longest back-off (10 s).
    60_000 + KILLS * MAX_BACKOFF_MS,
  )
}
