// The dirty pool's shell in the master (spec/dirty.md): one unit main.ts
// starts and stops. It runs the pool's chart (machines/dirty-pool.ts) with
// a clock of its own, carries out its commands (spawn, stop, kill the dirty
// workers), and tells HTTP workers which dirty workers to call. Calls never
// pass through here.
import { spawn, type ChildProcess } from 'node:child_process'
import { chownSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createActor } from 'xstate'
import {
  dirtyAppsOf,
  dirtyPoolMachine,
  type DirtyCommand,
  type DirtyEvent,
  type DirtySettings,
  type DirtyStopMode,
} from '../../machines/dirty-pool.ts'
import { writeErrorLog, type Logger } from '../logging/log.ts'
import { callHook, type DirtyWorkerInfo, type Hooks, type ServerInfo } from '../hooks/hooks.ts'
import {
  DIRTY_ENV,
  type CallStats,
  type DirtyWorkerMessage,
  type DirtyWorkerOptions,
  type RosterMessage,
  type RosterRequest,
} from './protocol.ts'

// From the sources: src/dirty/worker.ts; from the bundle: dist/dirty-worker.js, beside dist/cli.js.
const DIRTY_ENTRY = fileURLToPath(
  new URL(import.meta.url.endsWith('.ts') ? './worker.ts' : './dirty-worker.js', import.meta.url),
)
const TICK_MS = 250

export interface DirtyPoolOptions<S extends DirtySettings> {
  readonly settings: S
  readonly log: Logger
  /** -u/--user, -g/--group: dirty workers run as the HTTP workers do. */
  readonly identity?: { uid?: number; gid?: number }
  /** What the dirty pool's hooks get as `server`; its settings are those in force. */
  readonly server: ServerInfo
  /** The config file (absolute), for dirtyWorkerInit in the dirty workers. */
  readonly configFile?: string | undefined
}

interface Running {
  readonly info: DirtyWorkerInfo
  readonly child: ChildProcess
  readonly socket: string
  /** Its generation's: their hooks are the ones called for it. */
  readonly settings: DirtySettings
}

/** HTTP workers that asked for the roster: each is sent every change. */
const subscribers = new Set<ChildProcess>()
let current: (() => RosterMessage) | undefined

/**
 * An HTTP worker's questions about the dirty pool; worker-pool.ts calls it
 * once per spawned worker. Nothing is sent to a worker that never calls dirty().
 */
export function followDirty(child: ChildProcess): void {
  child.on('message', (message: RosterRequest) => {
    if (message?.t !== 'dirty-roster?') return
    subscribers.add(child)
    sendRoster(child)
  })
  child.on('exit', () => subscribers.delete(child))
}

function sendRoster(child: ChildProcess): void {
  if (!child.connected) return
  const roster: RosterMessage = current?.() ?? { t: 'dirty-roster', workers: [], apps: [], timeout: 0, draining: false }
  child.send(roster, (err) => {
    // A worker that is exiting: its own exit is reported elsewhere.
    if (err) subscribers.delete(child)
  })
}

export type DirtyPool<S extends DirtySettings = DirtySettings> = Awaited<ReturnType<typeof startDirtyPool<S>>>

export async function startDirtyPool<S extends DirtySettings>(options: DirtyPoolOptions<S>) {
  const { log, identity, server } = options
  /** The hooks of a generation's settings (a HUP may change them), called safely: a failure is logged. */
  const hook = <N extends 'onDirtyStarting' | 'dirtyPostSpawn' | 'dirtyWorkerExit'>(
    settings: DirtySettings,
    name: N,
    ...args: Parameters<Hooks[N]>
  ) => callHook(log, name, (settings as Partial<Hooks>)[name], args)
  const execArgv = process.execArgv.filter((a) => !a.startsWith('--inspect'))
  const dir = mkdtempSync(join(tmpdir(), 'corral-dirty-'))
  if (identity?.uid !== undefined || identity?.gid !== undefined)
    chownSync(dir, identity.uid ?? process.getuid?.() ?? 0, identity.gid ?? process.getgid?.() ?? 0)
  const running = new Map<number, Running>()
  /** Each live dirty worker's calls as it last reported them, and those of the ones gone. */
  const callReports = new Map<number, CallStats>()
  const gone: CallStats = {}
  let roster: { ids: readonly number[]; draining: boolean } = { ids: [], draining: false }
  let servingSettings: DirtySettings = options.settings
  let stopped: () => void = () => {}
  const whenStopped = new Promise<void>((resolve) => {
    stopped = resolve
  })

  const actor = createActor(dirtyPoolMachine, { input: { settings: options.settings, now: performance.now() } })
  const send = (event: DirtyEvent) => {
    if (actor.getSnapshot().status === 'active') actor.send(event)
  }

  current = () => ({
    t: 'dirty-roster',
    workers: roster.ids.flatMap((id) => {
      const w = running.get(id)
      return w ? [{ id, socket: w.socket, apps: w.info.apps }] : []
    }),
    apps: dirtyAppsOf(servingSettings).map((a) => a.name),
    timeout: servingSettings.dirtyTimeout,
    draining: roster.draining,
  })

  function spawnDirty(command: Extract<DirtyCommand, { type: 'spawnDirty' }>): void {
    const { id, slot, generation, apps, settings } = command
    const specs = dirtyAppsOf(settings).filter((a) => apps.includes(a.name))
    const socket = join(dir, `d${id}.sock`)
    const told: DirtyWorkerOptions = {
      id,
      slot,
      generation,
      socket,
      apps: specs.map(({ name, module, exportName }) => ({ name, module, exportName })),
      concurrency: (settings as DirtySettings & { dirtyConcurrency?: number }).dirtyConcurrency ?? 1,
      hooksFile: typeof (settings as Partial<Hooks>).dirtyWorkerInit === 'function' ? options.configFile : undefined,
    }
    // The title as a last, unused argument, as for HTTP workers (src/master/worker-pool.ts).
    const child = spawn(process.execPath, [...execArgv, DIRTY_ENTRY, `corral: dirty worker [${apps.join(',')}]`], {
      ...identity,
      // A group of its own: a terminal's ^C (sent to the master's group) is the master's to act on, not a crash here.
      detached: true,
      stdio: ['ignore', 'inherit', 'pipe', 'ipc'],
      env: { ...process.env, [DIRTY_ENV]: JSON.stringify(told) },
    })
    child.stderr?.on('data', (chunk: Buffer) => writeErrorLog(chunk.toString()))
    const info: DirtyWorkerInfo = { id, pid: child.pid, slot, generation, apps }
    running.set(id, { info, child, socket, settings })
    let reported = false
    const exited = (code: number | null, signal: string | null) => {
      if (reported) return
      reported = true
      send({ type: 'DIRTY_EXIT', id, code, signal })
    }
    child.on('message', (message: DirtyWorkerMessage) => {
      if (message.t === 'hb') {
        if (message.calls) callReports.set(id, message.calls)
        send({ type: 'DIRTY_BEAT', id, oldestCallMs: message.oldestCallMs })
      } else if (message.t === 'ready') send({ type: 'DIRTY_READY', id })
    })
    child.on('exit', exited)
    child.on('error', (err) => {
      if (child.pid !== undefined) return log.debug(`Dirty worker ${id}: ${err.message}`)
      log.error(`Dirty worker ${id} could not be started: ${err.message}`)
      exited(null, null)
    })
    if (child.pid !== undefined) {
      log.info(`Booting dirty worker with pid: ${child.pid} (slot ${slot}: ${apps.join(', ') || 'no app'})`)
      void hook(settings, 'dirtyPostSpawn', server, info)
    }
  }

  function carryOut(command: DirtyCommand): void {
    switch (command.type) {
      case 'spawnDirty':
        return spawnDirty(command)
      case 'stopDirty': {
        const w = running.get(command.id)
        if (!w) return
        w.child.kill(command.mode === 'graceful' ? 'SIGTERM' : 'SIGINT')
        return
      }
      case 'killDirty': {
        const w = running.get(command.id)
        if (!w) return
        log.warning(`Dirty worker (pid:${w.child.pid}) killed (${command.cause})`)
        w.child.kill('SIGKILL')
        return
      }
      case 'dirtyExited': {
        const w = running.get(command.id)
        running.delete(command.id)
        addCalls(gone, callReports.get(command.id) ?? {})
        callReports.delete(command.id)
        rmSync(join(dir, `d${command.id}.sock`), { force: true })
        const { code, signal, cause } = command
        const pid = w?.child.pid
        if (cause === 'crash' || cause === 'boot-failure')
          log.error(
            `Dirty worker (pid:${pid}) ${signal ? `was sent ${signal}` : `exited with code ${code}`} (${cause})`,
          )
        else log.info(`Dirty worker exited (pid: ${pid}, ${cause})`)
        if (w) void hook(w.settings, 'dirtyWorkerExit', server, { ...w.info, exitCode: code, signal, cause })
        return
      }
      case 'roster':
        roster = { ids: command.ids, draining: command.draining }
        servingSettings = command.settings
        for (const child of subscribers) sendRoster(child)
        return
      case 'log':
        return log[command.level](command.message)
      case 'stopped':
        return stopped()
    }
  }

  actor.on('*', (command) => carryOut(command as DirtyCommand))
  const clock = setInterval(() => send({ type: 'TICK', now: performance.now() }), TICK_MS)
  const apps = dirtyAppsOf(options.settings)
  if (apps.length > 0) {
    log.info(`Dirty pool: ${apps.map((a) => a.name).join(', ')}`)
    await hook(options.settings, 'onDirtyStarting', server)
  }
  actor.start()

  return {
    /** HUP: a new generation with the settings re-read. */
    reload: (settings: S) => send({ type: 'RELOAD', settings }),
    /** `corral ctl dirty add|remove N`. */
    scale: (by: number) => send({ type: 'SCALE', by }),
    /** The dirty workers now, for `ctl show dirty`, the hooks and the inspector. */
    list: (): (DirtyWorkerInfo & { state: string })[] => {
      const records = actor.getSnapshot().context.workers
      return records.flatMap((r) => {
        const w = running.get(r.id)
        return w ? [{ ...w.info, state: r.status }] : []
      })
    },
    /** Stops every dirty worker (graceful: their calls finish, up to --dirty-graceful-timeout) and resolves once all are gone. */
    async stop(mode: DirtyStopMode): Promise<void> {
      send({ type: 'STOP', mode })
      await whenStopped
      clearInterval(clock)
      current = undefined
      rmSync(dir, { recursive: true, force: true })
    },
    /** Every dirty worker's calls so far, for /metrics (src/dirty/metrics.ts). */
    calls(): CallStats {
      const all: CallStats = {}
      addCalls(all, gone)
      for (const stats of callReports.values()) addCalls(all, stats)
      return all
    },
    /** Last resort when the master itself is going down. */
    killAll(): void {
      for (const { child } of running.values()) child.kill('SIGKILL')
    },
  }
}

function addCalls(into: CallStats, from: CallStats): void {
  for (const [app, stats] of Object.entries(from)) {
    const sum = into[app] ?? { outcomes: {}, buckets: stats.buckets.map(() => 0), sum: 0 }
    into[app] = sum
    for (const [outcome, n] of Object.entries(stats.outcomes) as [keyof typeof stats.outcomes, number][])
      sum.outcomes[outcome] = (sum.outcomes[outcome] ?? 0) + n
    stats.buckets.forEach((n, i) => {
      sum.buckets[i] = (sum.buckets[i] ?? 0) + n
    })
    sum.sum += stats.sum
  }
}
