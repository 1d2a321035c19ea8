// 1 000 idle slowloris connections (issue 14, faults): each sends part of a
// request head and then nothing. A normal request is still answered while all
// 1 000 are open and held by the workers. How long it takes is a figure
// (bench/slowloris.ts, spec/reliability.md), not something a test on a shared
// machine can hold a threshold to.
import { afterEach, expect, it } from 'vitest'
import { fixture, freePort, killAll, startCorral, waitFor } from './helpers/corral.ts'
import { get } from './helpers/load.ts'
import { hasSs, openSlowloris, serverSideOwners } from './helpers/sockets.ts'

afterEach(killAll)

const IDLE = 1000

it.skipIf(!hasSs())(
  `a normal request is answered while ${IDLE} idle slowloris connections are open (-w 2)`,
  async ({ signal }) => {
    const port = await freePort()
    const corral = startCorral(['-w', '2', '-b', `127.0.0.1:${port}`, fixture('app-pid.ts')], { signal })
    await corral.untilReady()
    const idle = await openSlowloris(port, IDLE)
    try {
      // Accepted by the workers, not merely queued in the kernel: the request below goes in behind them.
      await waitFor(() => serverSideOwners(port).filter(Boolean).length === IDLE, {
        what: `${IDLE} connections held by workers`,
      })
      const workers = corral.workers()
      expect((await get(`http://127.0.0.1:${port}/`)).status).toBe(200)
      expect(idle.closed()).toBe(0)
      expect(serverSideOwners(port).filter((owner) => workers.includes(Number(owner)))).toHaveLength(IDLE)
    } finally {
      for (const socket of idle.sockets) socket.destroy()
    }
  },
  60_000,
)
