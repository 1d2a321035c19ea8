// The control protocol between `corral ctl` and a master's control socket
// (spec/control.md): JSON lines over a unix socket. A client writes one
// request per line and reads one response per line, in order, on as many
// requests as it likes per connection. `v` is the protocol version: a
// master answers a request of another major version with an error and
// nothing else, so an old client and a new master fail clearly.

export const CONTROL_PROTOCOL_VERSION = 1

export interface ControlRequest {
  readonly v: number
  /** Echoed in the response, for clients that pipeline. */
  readonly id?: number | string
  /** The command as words, e.g. ['show', 'workers'] or ['worker', 'add', '2']. */
  readonly command: readonly string[]
}

export type ControlResponse =
  | { readonly v: number; readonly id?: number | string; readonly ok: true; readonly data: ControlData }
  | { readonly v: number; readonly id?: number | string; readonly ok: false; readonly error: string }

/** What each command answers with (the `data` of a successful response). */
export type ControlData =
  | { readonly kind: 'workers'; readonly workers: readonly WorkerRow[] }
  | { readonly kind: 'stats'; readonly stats: MasterStats }
  | { readonly kind: 'config'; readonly settings: readonly ConfigRow[] }
  | { readonly kind: 'listeners'; readonly listeners: readonly ListenerRow[] }
  | { readonly kind: 'machine'; readonly machine: MachineSummary }
  | {
      readonly kind: 'all'
      readonly machine: MachineSummary
      readonly workers: readonly WorkerRow[]
      readonly stats: MasterStats
      readonly listeners: readonly ListenerRow[]
    }
  /** A command that became chart events: which, and how many. */
  | {
      readonly kind: 'sent'
      readonly event: string
      readonly count: number
      readonly master: number
      /** What the event carries, for people: `2 workers`, `worker pid 1234`. */
      readonly detail?: string
    }
  /** `reload wait`: how the reload it asked for ended. */
  | {
      readonly kind: 'reload'
      readonly outcome: ReloadOutcome
      /** complete: the generation now serving; abandoned: the one that serves on. */
      readonly generation: number | null
      readonly master: number
      /** abandoned: why, as the master logged it. */
      readonly detail?: string
    }
  | { readonly kind: 'help'; readonly commands: readonly string[] }
  /** `show dirty`: the dirty pool's workers (spec/dirty.md). */
  | { readonly kind: 'dirty'; readonly dirty: readonly DirtyRow[] }

export interface DirtyRow {
  readonly id: number
  readonly pid: number | undefined
  readonly slot: number
  readonly generation: number
  readonly state: string
  readonly apps: readonly string[]
}

/** `standby`: a spare (--standby) that has loaded the app and waits to take a serving worker's place. */
type WorkerState = 'booting' | 'running' | 'stopping' | 'killed' | 'standby'

export interface WorkerRow {
  /** The master's number for it: the machine's worker id. */
  readonly id: number
  readonly pid: number | null
  readonly generation: number
  readonly state: WorkerState
  readonly ageSeconds: number
  /** Counted by the worker and reported in batches (about once a second). */
  readonly requests: number
  readonly inFlight: number
  readonly connections: number
  readonly rssBytes: number | null
  /** Over the last report interval, 100 = one core. */
  readonly cpuPercent: number | null
  readonly heartbeatAgeSeconds: number
}

/** complete: the new generation serves; abandoned: it could not boot and the old one serves on; stopping: the master began to stop first. */
export type ReloadOutcome = 'complete' | 'abandoned' | 'refused' | 'stopping'

export const STATUS_CLASSES = ['1xx', '2xx', '3xx', '4xx', '5xx'] as const

export const RESTART_REASONS = [
  'crash',
  'timeout',
  'max-requests',
  'max-memory',
  'retired',
  'killed',
  'reload',
] as const
export type RestartReason = (typeof RESTART_REASONS)[number]

export interface MasterStats {
  readonly pid: number
  readonly uptimeSeconds: number
  readonly requests: Readonly<Record<(typeof STATUS_CLASSES)[number], number>>
  readonly requestsInFlight: number
  readonly connections: number
  readonly restarts: Readonly<Record<RestartReason, number>>
  readonly reloads: number
  readonly upgrades: number
}

export interface ConfigRow {
  readonly name: string
  readonly value: unknown
  /** Where the value came from, as --print-config says it. */
  readonly source: string
}

export interface ListenerRow {
  readonly address: string
  /** The master's file descriptor; null for --reuse-port (each worker has its own). */
  readonly fd: number | null
  readonly backlog: number
  /** Connections waiting in the kernel for a worker to accept them; null where the kernel does not say. */
  readonly queue: number | null
}

export interface MachineSummary {
  readonly pid: number
  /** The master chart's state, dotted: `active.running.steady`. */
  readonly state: string
  readonly ready: boolean
  /** Stopping for good (the chart's `draining` tag): `corral upgrade` does not stop such a master again. */
  readonly draining: boolean
  readonly target: number
  readonly generation: number
  readonly workers: number
  readonly reloadQueued: boolean
  readonly childMaster: string
  readonly crashStreak: number
  /** The chart's clock as of its last TICK: seconds on the master's monotonic clock (spec/signals.md, "The clock"). */
  readonly clockSeconds: number
}

/**
 * Cuts a stream of text into lines, for both ends of the socket: feed it
 * chunks as they arrive; it calls `onLine` with each complete line and
 * returns how many characters still wait for their newline.
 */
export function lineReader(onLine: (line: string) => void): (chunk: string) => number {
  let buffered = ''
  return (chunk) => {
    buffered += chunk
    let newline = buffered.indexOf('\n')
    while (newline >= 0) {
      const line = buffered.slice(0, newline)
      buffered = buffered.slice(newline + 1)
      onLine(line)
      newline = buffered.indexOf('\n')
    }
    return buffered.length
  }
}
