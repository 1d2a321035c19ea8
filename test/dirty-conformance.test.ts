// The dirty pool chart against a real master: random sequences of what an
// operator can do to the pool (ctl dirty add/remove, SIGKILL a dirty worker,
// HUP) applied to a real corral, and after each step the pool it settles on
// compared with what the chart's own rules predict: how many slots, which
// apps each carries (appsOfSlot), a killed worker's slot refilled by a new one.
import { fc, test } from '@fast-check/vitest'
import { afterEach, describe, expect } from 'vitest'
import { appsOfSlot, minimumSlots, type DirtySettings } from '../machines/dirty-pool.ts'
import type { DirtyRow } from '../src/protocol/control.ts'
import { answer, untilMaster, untilReady } from './helpers/control.ts'
import { fixture, freePort, killAll, startCorral } from './helpers/corral.ts'

afterEach(killAll)

const RUNS = Number(process.env.DIRTY_CONFORMANCE_RUNS ?? 1)
const APPS = [`lab=${fixture('dirty-app.ts')}:Lab:2`, `other=${fixture('dirty-app.ts')}:other`]
const SETTINGS: DirtySettings = { dirtyApps: APPS, dirtyWorkers: 2, dirtyTimeout: 300, dirtyGracefulTimeout: 30 }

type Step = { kind: 'add' | 'remove'; n: number } | { kind: 'kill'; pick: number } | { kind: 'hup' }

const step: fc.Arbitrary<Step> = fc.oneof(
  fc.record({ kind: fc.constant('add' as const), n: fc.integer({ min: 1, max: 2 }) }),
  fc.record({ kind: fc.constant('remove' as const), n: fc.integer({ min: 1, max: 3 }) }),
  fc.record({ kind: fc.constant('kill' as const), pick: fc.nat(5) }),
  fc.constant({ kind: 'hup' as const }),
)

describe('the dirty pool against a real master', () => {
  test.prop([fc.array(step, { minLength: 1, maxLength: 4 })], { numRuns: RUNS, endOnFailure: true })(
    'settles where the chart says after every step',
    async (steps) => {
      const signal = AbortSignal.timeout(240_000)
      const port = await freePort()
      const corral = startCorral([
        '--bind',
        `127.0.0.1:${port}`,
        '-w',
        '1',
        ...APPS.flatMap((a) => ['--dirty-app', a]),
        '--dirty-workers',
        '2',
        fixture('app-dirty.ts'),
      ])
      const socket = corral.controlSocket as string
      await untilReady(socket, signal)
      let target = 2
      let generation = 0
      /** The pool as it should settle: `target` slots of `generation`, all ready, nothing else. */
      const settled = () =>
        untilMaster(
          socket,
          ['show', 'dirty'],
          'dirty',
          (d) =>
            d.dirty.length === target &&
            d.dirty.every((r) => r.state === 'ready' && r.generation === generation) &&
            d.dirty,
          signal,
        )
      let rows: readonly DirtyRow[] = await settled()
      for (const s of steps) {
        if (s.kind === 'add' || s.kind === 'remove') {
          await answer(socket, ['dirty', s.kind, String(s.n)], 'sent')
          target = Math.max(minimumSlots(SETTINGS), target + (s.kind === 'add' ? s.n : -s.n))
        } else if (s.kind === 'kill') {
          const victim = rows[s.pick % rows.length] as DirtyRow
          process.kill(victim.pid as number, 'SIGKILL')
          const after = await untilMaster(
            socket,
            ['show', 'dirty'],
            'dirty',
            (d) => d.dirty.some((r) => r.slot === victim.slot && r.id !== victim.id && r.state === 'ready') && d.dirty,
            signal,
          )
          expect(after.some((r) => r.id === victim.id)).toBe(false)
        } else {
          // A reload sizes the pool from the re-read settings again, as the HTTP pool's does.
          corral.signal('SIGHUP')
          generation++
          target = Math.max(minimumSlots(SETTINGS), SETTINGS.dirtyWorkers)
        }
        rows = await settled()
        // One per slot, slots 0..target-1, each carrying what its slot carries.
        expect(rows.map((r) => r.slot).sort()).toEqual(Array.from({ length: target }, (_, i) => i))
        for (const r of rows) expect(r.apps).toEqual(appsOfSlot(SETTINGS, r.slot))
      }
      await killAll()
    },
    300_000,
  )
})
