// The master's clock, end to end: heartbeats and deadlines are measured on a
// monotonic clock, so a step of the wall clock (NTP, settimeofday, a VM's
// clock catching up) aborts nobody. libfaketime steps the master's wall
// clock by an hour while it serves (spec/signals.md, "The clock").
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { fixture, freePort, killAll, startCorral } from './helpers/corral.ts'
import { answer, untilMaster, untilReady } from './helpers/control.ts'
import { get } from './helpers/load.ts'

const LIBFAKETIME = '/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1'
afterEach(killAll)

/** A corral of two workers whose wall clock (master and workers) is read from `offset`, a libfaketime file. */
async function startWithFakeClock(offset: string, signal: AbortSignal, timeout: number) {
  writeFileSync(offset, '+0\n')
  const port = await freePort()
  const corral = startCorral(
    ['-w', '2', '--timeout', String(timeout), '-b', `127.0.0.1:${port}`, fixture('app-pid.ts')],
    {
      signal,
      env: {
        ...process.env,
        LD_PRELOAD: LIBFAKETIME,
        FAKETIME_TIMESTAMP_FILE: offset,
        FAKETIME_CACHE_DURATION: '0',
        // The monotonic clock is left alone: that is the clock corral must use.
        FAKETIME_DONT_FAKE_MONOTONIC: '1',
      },
    },
  )
  await untilReady(corral.controlSocket!, signal)
  return { corral, socket: corral.controlSocket!, url: `http://127.0.0.1:${port}` }
}

describe.skipIf(!existsSync(LIBFAKETIME))('the wall clock steps', () => {
  let dir = ''
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'corral-clock-'))
  })
  afterEach(() => rmSync(dir, { recursive: true, force: true }))

  it('forward by an hour, with a 4 s heartbeat timeout: no worker is aborted, the same workers serve on', async ({
    signal,
  }) => {
    const offset = join(dir, 'offset')
    const { corral, socket, url } = await startWithFakeClock(offset, signal, 4)
    const pids = corral.workers().sort()
    const { clockSeconds: before } = (await answer(socket, ['show', 'machine'], 'machine')).machine

    writeFileSync(offset, '+3600s\n')
    // The chart's own clock, which only ticks advance, 3 s past the step: many ticks have read the time since.
    await untilMaster(
      socket,
      ['show', 'machine'],
      'machine',
      ({ machine }) => machine.clockSeconds >= before + 3,
      signal,
    )

    expect(corral.log()).not.toMatch(/WORKER TIMEOUT/)
    expect(corral.workers().sort()).toEqual(pids)
    expect((await get(url)).status).toBe(200)
  })

  it('back by an hour: a worker stuck in a loop is still aborted after its 2 s timeout', async ({ signal }) => {
    const offset = join(dir, 'offset')
    const { corral, url } = await startWithFakeClock(offset, signal, 2)
    writeFileSync(offset, '-3600s\n')
    get(`${url}/spin`).catch(() => {})
    const stuck = Number((await corral.waitForLog(/spinning: worker (\d+) is stuck on purpose/))[1])
    // On the wall clock the stuck worker's silence would last an hour before it counted.
    await corral.waitForLog(new RegExp(`WORKER TIMEOUT \\(pid:${stuck}\\)`))
  })
})
