// The guided tour (src/inspector-ui/tour.ts): every step replayed through the
// pure master ends where its text says, every transition it lights exists in
// the charts, every section of gunicorn's design chapter has a step, and
// spec/tour.md and spec/tour.zh-CN.md are what `npm run tour-doc` writes.
import { existsSync, readFileSync } from 'node:fs'
import type { AnyStateMachine } from 'xstate'
import { describe, expect, it } from 'vitest'
import { masterMachine } from '../machines/master.ts'
import { workerMachine } from '../machines/worker.ts'
import { transitions } from '../scripts/machine-walk.ts'
import { TOUR_DOCS, tourDoc } from '../scripts/tour-doc.ts'
import { CHAPTER, LANGS, TOUR, type Section } from '../src/inspector-ui/tour.ts'
import { runStep } from '../src/inspector-ui/tour-run.ts'

describe('the tour', () => {
  it.each(TOUR.map((s) => [s.id, s] as const))('step %s ends where its text says', (_, step) => {
    const outcome = runStep(step)
    expect(outcome.state).toBe(step.expect.state)
    expect(outcome.workers).toEqual(step.expect.workers)
    const types = new Set(outcome.emitted.map((c) => c.type))
    for (const type of step.expect.emitted) expect(types, `${step.id} emits ${type}`).toContain(type)
  })

  it('lights only transitions the charts have', () => {
    const machines: Record<string, AnyStateMachine> = {
      master: masterMachine,
      worker: workerMachine as AnyStateMachine,
    }
    // By source and event, or with the guard too (the walker's key) where a step names one.
    const have = (machine: 'master' | 'worker') =>
      new Set(transitions(machines[machine]!).flatMap((t) => [`${t.source.id}: ${t.event}`, t.key]))
    for (const step of TOUR)
      for (const t of step.transitions)
        expect(have(t.machine), step.id).toContain(
          `${t.machine}.${t.state}: ${t.event}${t.guard === undefined ? '' : ` [${t.guard}]`}`,
        )
  })

  it('covers every section of the design chapter, and says each step in both languages', () => {
    const covered = new Set<Section>(TOUR.flatMap((s) => s.sections))
    expect([...covered].sort()).toEqual(Object.keys(CHAPTER).sort())
    expect(new Set(TOUR.map((s) => s.id)).size).toBe(TOUR.length)
    for (const step of TOUR)
      for (const lang of LANGS) for (const text of [step.title, step.text, step.doIt]) expect(text[lang]).not.toBe('')
    // The pinning tests exist.
    for (const pin of TOUR.flatMap((s) => s.pinnedBy))
      expect(existsSync(`test/${pin.split(' › ')[0]}.test.ts`), pin).toBe(true)
  })

  it.each(LANGS)('the %s tour in spec/ is what `npm run tour-doc` writes', (lang) => {
    // On failure: run `npm run tour-doc` and commit spec/tour.md and spec/tour.zh-CN.md.
    expect(readFileSync(TOUR_DOCS[lang], 'utf8')).toBe(tourDoc(lang))
  })
})
