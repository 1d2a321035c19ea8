// `reload wait` (spec/control.md): how the master tells which reload is the
// one a HUP asked for, and how it ended, from the chart's commands alone.
import { describe, expect, test } from 'vitest'
import type { MasterCommand } from '../machines/master-workers.ts'
import { followReload, type ReloadWatch } from '../src/master/control-commands.ts'

const settings = { workers: 1, timeout: 30, gracefulTimeout: 30 }
const started = (generation: number): MasterCommand => ({ type: 'reloadStarted', generation, settings })
const completed = (generation: number): MasterCommand => ({ type: 'reloadCompleted', generation })
const follow = (...events: [MasterCommand[], boolean?][]) =>
  events.reduce<ReloadWatch>((w, [commands, stopping]) => followReload(w, commands, stopping ?? false), {})

describe('followReload', () => {
  test('its own reload, started then completed', () => {
    expect(follow([[]], [[started(3)]], [[]], [[completed(3)]]).ended).toEqual({ outcome: 'complete', generation: 3 })
  })

  test('a reload in flight that completes first is not its own: it waits for the one its HUP queued', () => {
    const w = follow([[completed(2), started(3)]], [[completed(3)]])
    expect(w.ended).toEqual({ outcome: 'complete', generation: 3 })
    expect(follow([[completed(2)]]).ended).toBeUndefined()
  })

  test('abandoned, with the reason the chart logged just before', () => {
    const why = 'Reload abandoned: a worker of generation 4 exited with code 4 while booting'
    const w = follow(
      [[started(4)]],
      [
        [
          { type: 'log', level: 'error', message: why },
          { type: 'reloadAbandoned', generation: 3, settings },
        ],
      ],
    )
    expect(w.ended).toEqual({ outcome: 'abandoned', generation: 3, detail: why })
  })

  test("refused before it started: ended, with every problem; a refusal after its reload started is a later HUP's", () => {
    const refused: MasterCommand = { type: 'reloadRefused', problems: ['--certfile: missing', '--keyfile: missing'] }
    expect(follow([[refused]]).ended).toEqual({
      outcome: 'refused',
      generation: null,
      detail: '--certfile: missing; --keyfile: missing',
    })
    expect(follow([[started(2)]], [[refused]]).ended).toBeUndefined()
  })

  test('the master stopping first ends the wait; once ended, nothing later changes it', () => {
    expect(follow([[started(2)]], [[], true]).ended).toEqual({ outcome: 'stopping', generation: null })
    expect(follow([[started(2), completed(2)]], [[], true]).ended).toEqual({ outcome: 'complete', generation: 2 })
  })
})
