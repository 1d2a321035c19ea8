// The inspector page (spec/inspector.md), one script for both modes:
// live, served by a master's --inspector with ?token=, fed over SSE; and the
// playground (`corral inspect`, opened as a file), which runs the pure
// master machine here in the browser. Both keep the same timeline, so an
// export from one loads into the other.
import type { AnyStateMachine } from 'xstate'
import { masterMachine, type MasterCommand, type MasterEvent, type Signal } from '../../machines/master.ts'
import { workerMachine } from '../../machines/worker.ts'
import { workerState } from '../../machines/master-workers.ts'
import type { WorkerRow } from '../protocol/control.ts'
import { activeIds, layOut, toSvg, transitionKey, type Layout } from './charts.ts'
import { pickLang, WORDS, type Label } from './i18n.ts'
import { decodePaths, type GeneratedPath, type PathsData } from './paths.ts'
import { replayStep, startMaster, type MasterActor, type ReplayEntry, type TimelineFile } from './replay.ts'
import { CHAPTER, TOUR, TOUR_INPUT, type Lang, type TourAction } from './tour.ts'
import { dotted, takeAction } from './tour-run.ts'

interface Entry extends ReplayEntry {
  seq: number
  at: number
  /** Kind `worker`: which worker's own machine took the event (its `event`, `from` and `value` are the worker's). */
  worker?: number
  text?: string
  from?: unknown
  value?: unknown
  emitted?: readonly MasterCommand[]
  workers?: readonly WorkerRow[]
}

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T
const esc = (s: string) => s.replace(/[&<>"]/g, (c) => `&#${c.charCodeAt(0)};`)
const params = new URLSearchParams(location.search)
const token = params.get('token')
// `corral inspect --serve` serves this page as the playground over HTTP, and marks it so.
const live =
  location.protocol.startsWith('http') && token !== null && document.documentElement.dataset.serve !== 'playground'

const LANG_KEY = 'corral.lang'
const storedLang = (): string | null => {
  try {
    return localStorage.getItem(LANG_KEY)
  } catch {
    return null
  }
}
let lang: Lang = pickLang(params.get('lang'), storedLang(), navigator.languages)
const t = () => WORDS[lang]

let masterLayout: Layout
let workerLayout: Layout
const timeline: Entry[] = []
/** The entry shown, or undefined to follow the present. */
let selected: number | undefined
let current: { value: unknown; workers: readonly WorkerRow[] } = { value: undefined, workers: [] }
let playground: { actor: MasterActor; input: TimelineFile['input']; seq: number } | undefined
/** A loaded timeline being replayed step by step: the entries left. */
let pending: Entry[] = []

/** Live: each worker's own machine state, as the worker last reported it (spec/inspector.md). */
const reported = new Map<number, string>()

/** The playground has no worker processes: its worker charts show the master's view of each worker, mapped. */
const WORKER_STATE: Record<string, string> = {
  booting: 'booting',
  running: 'running',
  stopping: 'draining',
  killed: 'dead',
  standby: 'standby',
}

function describe(e: Entry): string {
  if (e.kind === 'worker') return `worker ${e.worker}: ${describeEvent(e.event as MasterEvent)}`
  if (e.kind !== 'event') return `${e.kind}: ${e.text ?? ''}`
  return describeEvent(e.event as MasterEvent)
}

/** The newest timeline entry at or before `seq` that `test` accepts. */
function lastUpTo(seq: number, test: (e: Entry) => boolean): Entry | undefined {
  for (let i = timeline.length - 1; i >= 0; i--) {
    const e = timeline[i] as Entry
    if (e.seq <= seq && test(e)) return e
  }
  return undefined
}

function describeEvent(ev: MasterEvent): string {
  // The settings a HUP re-read: the chart reads three of them, so those are what the timeline shows.
  if (ev.type === 'SETTINGS_READ' && ev.settings) {
    const { workers, timeout, gracefulTimeout } = ev.settings
    return `SETTINGS_READ workers=${workers} timeout=${timeout} gracefulTimeout=${gracefulTimeout}`
  }
  const detail = Object.entries(ev)
    .filter(([k]) => k !== 'type')
    .map(([k, v]) => `${k}=${JSON.stringify(v)}`)
    .join(' ')
  return `${ev.type}${detail ? ` ${detail}` : ''}`
}

const stateText = (value: unknown): string =>
  typeof value === 'string'
    ? value
    : value && typeof value === 'object'
      ? Object.entries(value)
          .map(([k, v]) => (typeof v === 'string' || (v && typeof v === 'object') ? `${k}.${stateText(v)}` : k))
          .join(', ')
      : ''

function render(): void {
  const shown = selected === undefined ? undefined : timeline.find((e) => e.seq === selected)
  // As of the entry shown: the master's chart after the last master event, the rows of the last entry that has them.
  const masterAt = shown && lastUpTo(shown.seq, (e) => e.kind === 'event')
  const value = masterAt?.value ?? current.value
  const workers = (shown && lastUpTo(shown.seq, (e) => e.workers !== undefined)?.workers) ?? current.workers
  const active = activeIds(masterMachine, value)
  // The transition the entry shown took; following the present, the latest one's: what the chart just did.
  const tookLast = shown ?? masterAt ?? lastUpTo(Number.POSITIVE_INFINITY, (e) => e.kind === 'event')
  const taken =
    tookLast?.kind === 'event' && tookLast.event !== undefined
      ? { from: activeIds(masterMachine, tookLast.from), event: tookLast.event.type }
      : undefined
  $('master-chart').innerHTML = toSvg(masterLayout, active, taken, litTransitions('master'), zoom.master)
  $('master-state').textContent = stateText(value)
  $('viewing').textContent = shown
    ? `${t().viewingAsOf} #${shown.seq} ${new Date(shown.at).toISOString().slice(11, 23)}: ${describe(shown)}${shown.emitted?.length ? ` → ${shown.emitted.map((c) => c.type).join(', ')}` : ''}`
    : t().live
  $('workers').innerHTML = workers
    .map(
      (w) =>
        `<tr data-worker="${w.id}"><td>${w.id}</td><td class="pid">${w.pid ?? '—'}</td><td>${w.generation}</td><td>${w.state}</td><td>${w.ageSeconds.toFixed(0)} s</td><td>${w.requests}</td><td>${w.rssBytes === null ? '—' : `${(w.rssBytes / 1048576).toFixed(1)} MB`}</td><td>${w.heartbeatAgeSeconds.toFixed(1)} s</td><td><button class="stop" data-kill="${w.id}">${esc(t().kill)}</button></td></tr>`,
    )
    .join('')
  $('worker-charts').innerHTML = workers.map((w) => workerFigure(w, shown)).join('')
  for (const li of Array.from($('timeline').querySelectorAll('li')))
    li.classList.toggle('selected', Number((li as HTMLElement).dataset.seq) === selected)
  renderTabs(workers)
  centreActive(JSON.stringify(value))
}

// ---------------------------------------------------------------------------
// The chart view: one chart at a time in the viewport (the master's, or a
// worker's, one click away on the tabs), zoomed and panned.

/** `master`, or `worker-N`. */
let chartShown = 'master'
const zoom = { master: 1, worker: 1 }
const ZOOM_STEP = 1.25
const zoomKind = () => (chartShown === 'master' ? 'master' : 'worker')

let tabsDrawn = ''

function renderTabs(workers: readonly WorkerRow[]): void {
  if (chartShown !== 'master' && !workers.some((w) => `worker-${w.id}` === chartShown)) chartShown = 'master'
  const tab = (key: string, text: string) =>
    `<button type="button" data-chart="${key}"${key === chartShown ? ' class="on"' : ''}>${esc(text)}</button>`
  const tabs = [
    tab('master', t().master),
    ...workers.map((w) => tab(`worker-${w.id}`, `${t().worker} ${w.id} · ${w.state}`)),
  ].join('')
  // Redrawn only when they change: a click must not land on a tab being replaced.
  if (tabs !== tabsDrawn) $('chart-tabs').innerHTML = tabsDrawn = tabs
  $('master-chart').hidden = chartShown !== 'master'
  for (const f of Array.from($('worker-charts').querySelectorAll<HTMLElement>('figure')))
    f.classList.toggle('shown', `worker-${f.dataset.worker}` === chartShown)
}

/** The last state value the view was centred on: a new one brings its active state into view. */
let centredOn = ''

function centreActive(value: string): void {
  const chart = chartShown === 'master' ? $('master-chart') : $('worker-charts').querySelector('figure.shown')
  const key = `${chartShown} ${value} ${chart?.getAttribute('data-state') ?? ''}`
  if (key === centredOn || !chart) return
  centredOn = key
  const states = chart.querySelectorAll<SVGGElement>('g.state.active')
  const leaf = states[states.length - 1]
  if (leaf) centre(leaf)
}

function centre(element: Element): void {
  const port = $('viewport')
  const box = element.getBoundingClientRect()
  const frame = port.getBoundingClientRect()
  port.scrollLeft += box.left + box.width / 2 - (frame.left + frame.width / 2)
  port.scrollTop += box.top + box.height / 2 - (frame.top + frame.height / 2)
}

function setZoom(next: number, around?: { x: number; y: number }): void {
  const kind = zoomKind()
  const port = $('viewport')
  const frame = port.getBoundingClientRect()
  const at = around ?? { x: frame.left + frame.width / 2, y: frame.top + frame.height / 2 }
  const before = zoom[kind]
  zoom[kind] = Math.min(4, Math.max(0.2, next))
  // Keep the point under `at` where it was.
  const ratio = zoom[kind] / before
  const x = port.scrollLeft + at.x - frame.left
  const y = port.scrollTop + at.y - frame.top
  render()
  port.scrollLeft = x * ratio - (at.x - frame.left)
  port.scrollTop = y * ratio - (at.y - frame.top)
}

function fitZoom(): number {
  const layout = zoomKind() === 'master' ? masterLayout : workerLayout
  const port = $('viewport')
  return Math.min(port.clientWidth / (layout.graph.width ?? 1), port.clientHeight / (layout.graph.height ?? 1))
}

function chartControls(): void {
  $('chart-tabs').addEventListener('click', (e) => {
    const tab = (e.target as HTMLElement).closest<HTMLButtonElement>('button[data-chart]')
    if (!tab) return
    chartShown = tab.dataset.chart ?? 'master'
    centredOn = ''
    render()
  })
  $('zoom-in').addEventListener('click', () => setZoom(zoom[zoomKind()] * ZOOM_STEP))
  $('zoom-out').addEventListener('click', () => setZoom(zoom[zoomKind()] / ZOOM_STEP))
  $('zoom-reset').addEventListener('click', () => setZoom(1))
  $('zoom-fit').addEventListener('click', () => setZoom(fitZoom()))
  const port = $('viewport')
  port.addEventListener(
    'wheel',
    (e) => {
      if (!e.ctrlKey) return
      e.preventDefault()
      setZoom(zoom[zoomKind()] * (e.deltaY < 0 ? ZOOM_STEP : 1 / ZOOM_STEP), { x: e.clientX, y: e.clientY })
    },
    { passive: false },
  )
  let drag: { x: number; y: number } | undefined
  port.addEventListener('pointerdown', (e) => {
    if (e.button !== 0) return
    drag = { x: e.clientX, y: e.clientY }
    port.classList.add('dragging')
  })
  window.addEventListener('pointermove', (e) => {
    if (!drag) return
    port.scrollLeft -= e.clientX - drag.x
    port.scrollTop -= e.clientY - drag.y
    drag = { x: e.clientX, y: e.clientY }
  })
  window.addEventListener('pointerup', () => {
    drag = undefined
    port.classList.remove('dragging')
  })
}

/**
 * A worker's chart. Live, its own machine's state as the worker reported it
 * (as of the entry shown, with the transition of that worker's entry lit);
 * in the playground, the master's view of it.
 */
function workerFigure(w: WorkerRow, shown: Entry | undefined): string {
  const machine = workerMachine as AnyStateMachine
  if (!live) {
    const view = WORKER_STATE[w.state]
    return `<figure data-worker="${w.id}" data-state="${view ?? ''}"><figcaption>${esc(t().workerCaption(w.id, w.generation, w.state))}</figcaption>${toSvg(workerLayout, activeIds(machine, view), undefined, litTransitions('worker'), zoom.worker)}</figure>`
  }
  const own = shown
    ? (lastUpTo(shown.seq, (e) => e.kind === 'worker' && e.worker === w.id)?.value as string | undefined)
    : reported.get(w.id)
  const taken =
    shown?.kind === 'worker' && shown.worker === w.id && shown.event
      ? { from: activeIds(machine, shown.from), event: shown.event.type }
      : undefined
  return `<figure data-worker="${w.id}" data-state="${own ?? ''}"><figcaption>${esc(t().workerCaptionLive(w.id, String(w.pid ?? '—'), w.generation, own ?? t().notReported, w.state))}</figcaption>${toSvg(workerLayout, activeIds(machine, own), taken, litTransitions('worker'), zoom.worker)}</figure>`
}

function addEntry(e: Entry): void {
  timeline.push(e)
  const li = document.createElement('li')
  li.dataset.seq = String(e.seq)
  li.dataset.kind = e.kind
  li.className = e.kind
  const commands = e.emitted?.filter((c) => c.type !== 'log').map((c) => c.type) ?? []
  li.innerHTML = `<time>${new Date(e.at).toISOString().slice(11, 23)}</time> <span class="what">${esc(describe(e))}</span>${e.value !== undefined ? ` <span class="to">→ ${esc(stateText(e.value))}</span>` : ''}${commands.length ? ` <span class="cmds">${esc(commands.join(', '))}</span>` : ''}`
  li.addEventListener('click', () => {
    selected = selected === e.seq ? undefined : e.seq
    render()
  })
  const list = $('timeline')
  list.append(li)
  if (selected === undefined) list.scrollTop = list.scrollHeight
}

function exportTimeline(): void {
  const input = playground?.input ?? exportInput
  const file = { corral: 'timeline', version: 1, input, timeline }
  const a = document.createElement('a')
  a.href = URL.createObjectURL(new Blob([JSON.stringify(file, null, 1)], { type: 'application/json' }))
  a.download = 'corral-timeline.json'
  a.click()
}
let exportInput: TimelineFile['input'] = { settings: { workers: 2, timeout: 30, gracefulTimeout: 30 } }

// ---------------------------------------------------------------------------
// Live: the master's SSE feed, in @statelyai/inspect's message shapes.

function connect(): void {
  const source = new EventSource(`/events?token=${encodeURIComponent(token ?? '')}`)
  source.onmessage = (m) => {
    const msg = JSON.parse(m.data)
    const worker = /^worker-(\d+)$/.exec(msg.sessionId ?? '')
    if (msg.type === '@xstate.actor' && msg.sessionId === 'master') {
      current = { value: msg.snapshot.value, workers: msg.snapshot.workers }
      for (const e of msg.timeline as Entry[]) if (!timeline.some((t) => t.seq === e.seq)) addEntry(e)
    } else if (msg.type === '@xstate.actor' && worker) {
      if (msg.snapshot.value !== null) reported.set(Number(worker[1]), msg.snapshot.value)
    } else if (msg.type === '@xstate.snapshot' && worker) {
      reported.set(Number(worker[1]), msg.snapshot.value)
      addEntry(msg.entry)
    } else if (msg.type === '@xstate.snapshot' && msg.sessionId === 'master') {
      current = { value: msg.snapshot.value, workers: msg.snapshot.workers }
      addEntry(msg.entry)
    } else if (msg.type === 'corral.note') addEntry(msg.entry)
    else if (msg.type === 'corral.workers') current = { ...current, workers: msg.workers }
    else return
    render()
  }
  source.onopen = () => {
    document.body.dataset.connected = 'true'
    applyLabels()
  }
  source.onerror = () => {
    document.body.dataset.connected = 'false'
    applyLabels()
  }
  fetch(`/timeline.json?token=${encodeURIComponent(token ?? '')}`)
    .then((r) => r.json())
    .then((f: TimelineFile) => {
      exportInput = f.input
    })
}

const STOPS = new Set(['TERM', 'INT', 'QUIT'])

/** `worker kill`: the master stops that worker gracefully and starts another (the chart's KILL_WORKER). */
function killWorker(id: number): void {
  if (!confirm(t().confirmKill(id))) return
  if (live) {
    void fetch(`/send?token=${encodeURIComponent(token ?? '')}&kill=${id}`, { method: 'POST' })
    return
  }
  fire({ type: 'KILL_WORKER', id })
}

function sendSignal(signal: Signal): void {
  if (STOPS.has(signal) && !confirm(t().confirmStop(signal))) return
  if (live) {
    void fetch(`/send?token=${encodeURIComponent(token ?? '')}&signal=${signal}`, { method: 'POST' })
    return
  }
  fire(signal === 'WINCH' ? { type: 'WINCH', fromTerminal: false } : { type: signal })
  // The shell's answer to the HUP's readSettings, as a master with no config file gives it: at once, keeping the settings.
  if (signal === 'HUP' && (playground?.actor.getSnapshot().context.settingsReads ?? 0) > 0)
    fire({ type: 'SETTINGS_READ' })
}

// ---------------------------------------------------------------------------
// Playground: the pure machine, here.

function rowsOf(actor: MasterActor): WorkerRow[] {
  const { context } = actor.getSnapshot()
  return context.workers.map((w) => ({
    id: w.id,
    pid: null,
    generation: w.generation,
    state: workerState(w),
    ageSeconds: (context.now - w.spawnedAt) / 1000,
    requests: 0,
    inFlight: 0,
    connections: 0,
    rssBytes: null,
    cpuPercent: null,
    heartbeatAgeSeconds: (context.now - w.lastBeat) / 1000,
  }))
}

/** What the master emitted as it started (its first spawnWorkers): the tour's first step shows them. */
let startCommands: MasterCommand[] = []

function startPlayground(input: TimelineFile['input']): void {
  playground?.actor.stop()
  timeline.length = 0
  $('timeline').innerHTML = ''
  selected = undefined
  const started: MasterCommand[] = []
  const actor = startMaster(input, (c) => started.push(c))
  startCommands = [...started]
  playground = { actor, input, seq: 0 }
  current = { value: actor.getSnapshot().value, workers: rowsOf(actor) }
  render()
}

/** Sends an event (or replays an entry) into the playground's machine and records what it did. */
function fire(event: MasterEvent, recorded?: Entry): void {
  if (!playground) return
  const { actor } = playground
  const before = actor.getSnapshot()
  const emitted: MasterCommand[] = []
  const sub = actor.on('*', (c) => void emitted.push(c as MasterCommand))
  replayStep(actor, recorded ?? { kind: 'event', event, nowBefore: before.context.now })
  sub.unsubscribe()
  const after = actor.getSnapshot()
  current = { value: after.value, workers: rowsOf(actor) }
  addEntry({
    seq: ++playground.seq,
    at: recorded?.at ?? Date.now(),
    kind: 'event',
    event,
    nowBefore: before.context.now,
    from: before.value,
    value: after.value,
    emitted,
    workers: current.workers,
  })
  render()
}

function selectedWorker(): number {
  return Number(($('worker-id') as HTMLSelectElement).value)
}

function playgroundControls(): void {
  const now = () => playground?.actor.getSnapshot().context.now ?? 0
  const on = (id: string, f: () => void) => $(id).addEventListener('click', f)
  on('ev-ready', () => fire({ type: 'WORKER_READY', id: selectedWorker() }))
  on('ev-exit', () =>
    fire({
      type: 'WORKER_EXIT',
      id: selectedWorker(),
      code: Number(($('exit-code') as HTMLInputElement).value),
      signal: null,
    }),
  )
  on('ev-heartbeat', () => fire({ type: 'HEARTBEAT', id: selectedWorker() }))
  on('ev-retiring', () =>
    fire({ type: 'WORKER_RETIRING', id: selectedWorker(), cause: 'max-requests', reason: 'max requests' }),
  )
  on('ev-tick', () => fire({ type: 'TICK', now: now() + Number(($('tick-ms') as HTMLInputElement).value) }))
  on('ev-reexec-ready', () => fire({ type: 'REEXEC_READY' }))
  on('ev-reexec-failed', () => fire({ type: 'REEXEC_FAILED', reason: 'from the playground' }))
  on('ev-reexec-exit', () => fire({ type: 'REEXEC_EXIT', code: 1, signal: null }))
  // As the tour's allReady: until nothing boots (the launch's first worker ready spawns the rest).
  on('ev-all-ready', () => {
    const actor = playground?.actor
    if (actor) takeAction({ allReady: true }, () => actor.getSnapshot().context, fire)
  })
  on('reset', () => {
    walk = undefined
    renderPath()
    startPlayground(exportInput)
  })
  $('load').addEventListener('change', async () => {
    const file = ($('load') as HTMLInputElement).files?.[0]
    if (file) load(JSON.parse(await file.text()) as TimelineFile)
  })
  on('step', () => step())
  on('play-all', () => {
    while (pending.length) step()
  })
}

function load(file: TimelineFile): void {
  walk = undefined
  renderPath()
  exportInput = file.input
  startPlayground(file.input)
  pending = (file.timeline as Entry[]).filter((e) => e.kind === 'event')
  $('pending').textContent = t().toReplay(pending.length)
}

function step(): void {
  const next = pending.shift()
  if (next?.event) fire(next.event, next)
  $('pending').textContent = t().toReplay(pending.length)
}

// ---------------------------------------------------------------------------
// Playground: the graph-generated paths the machine tests replay, step by step.

const pathsData = (): PathsData => JSON.parse($('paths').textContent ?? '') as PathsData
let pathLists: GeneratedPath[][] = []
/** The path being stepped through, and how many of its events have been fired. */
let walk: { input: TimelineFile['input']; path: GeneratedPath; at: number } | undefined

const sameState = (a: unknown, b: unknown) => {
  const x = activeIds(masterMachine, a)
  const y = activeIds(masterMachine, b)
  return x.size === y.size && [...x].every((id) => y.has(id))
}

function pathControls(): void {
  const data = pathsData()
  pathLists = data.explorations.map((_, i) => decodePaths(data, i))
  const exploration = $<HTMLSelectElement>('path-exploration')
  const end = $<HTMLSelectElement>('path-end')
  const pick = $<HTMLSelectElement>('path-pick')
  exploration.innerHTML = data.explorations
    .map((x, i) => `<option value="${i}">${esc(x.name)} (${t().nPaths(pathLists[i]?.length ?? 0)})</option>`)
    .join('')
  const fillPicks = () => {
    const paths = pathLists[Number(exploration.value)] ?? []
    pick.innerHTML = paths
      .flatMap((p, i) =>
        JSON.stringify(p.end) === end.value
          ? [`<option value="${i}">#${i}: ${t().nEvents(p.events.length)}</option>`]
          : [],
      )
      .join('')
  }
  const fillEnds = () => {
    const counts = new Map<string, number>()
    for (const p of pathLists[Number(exploration.value)] ?? []) {
      const key = JSON.stringify(p.end)
      counts.set(key, (counts.get(key) ?? 0) + 1)
    }
    end.innerHTML = [...counts]
      .map(([key, n]) => `<option value="${esc(key)}">${esc(stateText(JSON.parse(key)))} (${n})</option>`)
      .join('')
    fillPicks()
  }
  exploration.addEventListener('change', fillEnds)
  end.addEventListener('change', fillPicks)
  fillEnds()
  const on = (id: string, f: () => void) => $(id).addEventListener('click', f)
  on('path-load', () => {
    const path = pathLists[Number(exploration.value)]?.[Number(pick.value)]
    const input = data.explorations[Number(exploration.value)]?.input
    if (!path || !input) return
    walk = { input, path, at: 0 }
    exportInput = input
    pending = []
    $('pending').textContent = ''
    startPlayground(input)
    renderPath()
  })
  on('path-forward', pathForward)
  on('path-all', () => {
    while (walk && walk.at < walk.path.events.length) pathForward()
  })
  // Back: the machine cannot undo, so the path is replayed from its start to one step short.
  on('path-back', () => {
    if (!walk || walk.at === 0) return
    const { input, path } = walk
    const at = walk.at - 1
    startPlayground(input)
    walk = { input, path, at }
    for (const event of path.events.slice(0, at)) fire(event)
    renderPath()
  })
}

function pathForward(): void {
  const event = walk?.path.events[walk.at]
  if (!walk || !event) return
  walk.at++
  fire(event)
  renderPath()
}

function renderPath(): void {
  const status = $('path-status')
  const list = $('path-events')
  if (!walk) {
    status.textContent = ''
    list.innerHTML = ''
    delete status.dataset.atEnd
    delete status.dataset.matches
    return
  }
  const { path, at } = walk
  const atEnd = at === path.events.length
  const matches = atEnd && sameState(current.value, path.end)
  status.dataset.atEnd = String(atEnd)
  status.dataset.matches = String(matches)
  status.textContent = `${t().pathStatus(at, path.events.length, stateText(path.end))}${atEnd ? (matches ? t().reached : t().reachedInstead(stateText(current.value))) : ''}`
  list.innerHTML = path.events
    .map((e, i) => `<li class="${i < at ? 'done' : i === at ? 'next' : ''}">${esc(describeEvent(e))}</li>`)
    .join('')
}

// ---------------------------------------------------------------------------

// ---------------------------------------------------------------------------
// The guided tour (tour.ts): a step's text, its transitions lit on the
// charts, and in the playground "do it", which starts the tour's master,
// sets the scene and sends the step's events, then says whether the chart
// landed where the text says.

let tourAt = Math.max(
  0,
  TOUR.findIndex((s) => s.id === params.get('step')),
)

function litTransitions(machine: 'master' | 'worker'): Set<string> {
  const step = TOUR[tourAt]
  return new Set(
    (step?.transitions ?? [])
      .filter((x) => x.machine === machine)
      .map((x) => transitionKey(`${machine}.${x.state}`, x.event, x.guard)),
  )
}

/** Prose with `code` in backticks, as HTML. */
const prose = (text: string) => esc(text).replace(/`([^`]+)`/g, '<code>$1</code>')

function renderTour(): void {
  const step = TOUR[tourAt]
  if (!step) return
  const select = $<HTMLSelectElement>('tour-step')
  select.innerHTML = TOUR.map(
    (s, i) => `<option value="${i}"${i === tourAt ? ' selected' : ''}>${i + 1}. ${esc(s.title[lang])}</option>`,
  ).join('')
  $('tour').dataset.step = step.id
  $('tour-title').textContent = `${tourAt + 1} / ${TOUR.length} · ${step.title[lang]}`
  $('tour-sections').innerHTML =
    `${esc(t().chapter)} ${step.sections.map((s) => `<span class="section">${esc(CHAPTER[s][lang])}</span>`).join(' ')}`
  $('tour-text').innerHTML = `<p>${prose(step.text[lang])}</p>`
  $('tour-transitions').innerHTML = `${esc(t().about)} ${
    step.transitions.length
      ? step.transitions
          .map(
            (x) =>
              `<code class="lit">${x.machine === 'worker' ? `${esc(t().worker)} ` : ''}${esc(`${x.state}: ${x.event}${x.guard ? ` [${x.guard}]` : ''}`)}</code>`,
          )
          .join(' ')
      : esc(t().noTransitions)
  }`
  $('tour-do-text').innerHTML = prose(step.doIt[lang])
  const result = $('tour-result')
  if (result.dataset.step !== step.id) {
    result.textContent = ''
    delete result.dataset.matches
    delete result.dataset.step
  }
}

function goTour(i: number): void {
  tourAt = Math.min(TOUR.length - 1, Math.max(0, i))
  renderTour()
  render()
  // Bring what the step is about into view: its first lit transition on the chart shown.
  const lit = $('viewport').querySelector<SVGElement>('#master-chart:not([hidden]) .lit, figure.shown .lit')
  if (lit) centre(lit)
}

function doTourStep(): void {
  const step = TOUR[tourAt]
  if (!step || !playground) return
  walk = undefined
  renderPath()
  pending = []
  $('pending').textContent = ''
  exportInput = TOUR_INPUT
  startPlayground(TOUR_INPUT)
  const take = (actions: readonly TourAction[]) => {
    for (const action of actions) {
      const actor = playground?.actor
      if (actor) takeAction(action, () => actor.getSnapshot().context, fire)
    }
  }
  take(step.setup)
  const mark = playground.seq
  take(step.act)
  // As test/tour.test.ts counts them: after the setup, the master's start included when there is none.
  const emitted = [
    ...(step.setup.length === 0 ? startCommands : []),
    ...timeline.filter((e) => e.seq > mark).flatMap((e) => e.emitted ?? []),
  ].map((c): string => c.type)
  const state = dotted(current.value).join(', ')
  const workers = playground.actor.getSnapshot().context.workers.map((w) => w.status)
  const matches =
    state === step.expect.state &&
    JSON.stringify(workers) === JSON.stringify(step.expect.workers) &&
    step.expect.emitted.every((c) => emitted.includes(c))
  const result = $('tour-result')
  result.dataset.step = step.id
  result.dataset.matches = String(matches)
  result.dataset.state = state
  const commands = [...new Set(emitted.filter((c) => c !== 'log'))].join(', ')
  result.textContent = `${matches ? t().asSaid(state) : t().notAsSaid(state, step.expect.state)} · ${t().emitted} ${commands}`
  centredOn = ''
  render()
}

function tourControls(): void {
  $('tour-prev').addEventListener('click', () => goTour(tourAt - 1))
  $('tour-next').addEventListener('click', () => goTour(tourAt + 1))
  $('tour-step').addEventListener('change', () => goTour(Number($<HTMLSelectElement>('tour-step').value)))
  $('tour-do').addEventListener('click', doTourStep)
}

// ---------------------------------------------------------------------------
// The page's language: English or Chinese, with a switch.

function applyLabels(): void {
  const words = WORDS[lang]
  document.documentElement.lang = lang
  for (const el of Array.from(document.querySelectorAll<HTMLElement>('[data-i18n]')))
    el.textContent = words[el.dataset.i18n as Label]
  for (const el of Array.from(document.querySelectorAll<HTMLElement>('[data-i18n-title]')))
    el.title = words[el.dataset.i18nTitle as Label]
  $('mode').textContent = live ? words.modeLive : words.modePlayground
  const conn = document.body.dataset.connected
  $('conn').textContent = conn === undefined ? '' : conn === 'true' ? words.connected : words.disconnected
  $<HTMLSelectElement>('lang').value = lang
}

function setLang(next: Lang): void {
  lang = next
  try {
    localStorage.setItem(LANG_KEY, next)
  } catch {}
  applyLabels()
  renderTour()
  render()
}

async function main(): Promise<void> {
  document.body.dataset.mode = live ? 'live' : 'playground'
  applyLabels()
  $('lang').addEventListener('change', () => setLang($<HTMLSelectElement>('lang').value as Lang))
  ;[masterLayout, workerLayout] = await Promise.all([layOut(masterMachine), layOut(workerMachine as AnyStateMachine)])
  chartControls()
  tourControls()
  renderTour()
  for (const b of Array.from(document.querySelectorAll<HTMLButtonElement>('button[data-signal]')))
    b.addEventListener('click', () => sendSignal(b.dataset.signal as Signal))
  // The table is redrawn on every update: one listener on it for the rows' kill buttons.
  $('workers').addEventListener('click', (e) => {
    const kill = (e.target as HTMLElement).closest<HTMLButtonElement>('button[data-kill]')
    if (kill) killWorker(Number(kill.dataset.kill))
  })
  $('export').addEventListener('click', exportTimeline)
  $('follow').addEventListener('click', () => {
    selected = undefined
    render()
  })
  if (live) connect()
  else {
    playgroundControls()
    pathControls()
    startPlayground(exportInput)
  }
  render()
  // For tests and the curious: the page's state, from outside.
  Object.assign(window, {
    corral: {
      state: () => ({ value: current.value, context: playground?.actor.getSnapshot().context }),
      load,
      step,
      timeline: () => timeline,
      lang: () => lang,
    },
  })
  document.body.dataset.ready = 'true'
}

void main()
