// How `corral ctl` shows answers to people: tables padded to their widest
// cell, key: value lists, sizes and durations. -j prints the JSON instead.
import { RESTART_REASONS, STATUS_CLASSES, type ControlData, type WorkerRow } from '../protocol/control.ts'

export function format(data: ControlData): string {
  switch (data.kind) {
    case 'workers':
      return workersTable(data.workers)
    case 'stats': {
      const s = data.stats
      return keyValues([
        ['master', String(s.pid)],
        ['uptime', duration(s.uptimeSeconds)],
        ['requests', STATUS_CLASSES.map((c) => `${c} ${s.requests[c]}`).join('  ')],
        ['in flight', String(s.requestsInFlight)],
        ['connections', String(s.connections)],
        ['restarts', RESTART_REASONS.map((r) => `${r} ${s.restarts[r]}`).join('  ')],
        ['reloads', String(s.reloads)],
        ['upgrades', String(s.upgrades)],
      ])
    }
    case 'config':
      return formatTable(
        ['SETTING', 'VALUE', 'SOURCE'],
        data.settings.map((r) => [r.name, r.value === null ? '(none)' : JSON.stringify(r.value), r.source]),
      )
    case 'listeners':
      return formatTable(
        ['ADDRESS', 'FD', 'BACKLOG', 'QUEUE'],
        data.listeners.map((l) => [
          l.address,
          l.fd === null ? '-' : String(l.fd),
          String(l.backlog),
          l.queue === null ? '-' : String(l.queue),
        ]),
      )
    case 'machine':
      return keyValues(Object.entries(data.machine).map(([k, v]) => [k, String(v)]))
    case 'all':
      return [
        format({ kind: 'machine', machine: data.machine }),
        format({ kind: 'workers', workers: data.workers }),
        format({ kind: 'listeners', listeners: data.listeners }),
        format({ kind: 'stats', stats: data.stats }),
      ].join('\n')
    case 'sent':
      return `sent ${data.event}${data.count > 1 ? ` ×${data.count}` : ''}${data.detail ? ` (${data.detail})` : ''} to master ${data.master}\n`
    case 'reload':
      return data.outcome === 'complete'
        ? `reload complete: generation ${data.generation} is serving (master ${data.master})\n`
        : data.outcome === 'abandoned'
          ? `reload abandoned: ${data.detail ?? 'the new workers could not boot'} (master ${data.master})\n`
          : data.outcome === 'refused'
            ? `reload not started: ${data.detail ?? 'the settings were refused'} (master ${data.master})\n`
            : `reload not done: master ${data.master} is stopping\n`
    case 'help':
      return `${data.commands.join('\n')}\n`
    case 'dirty':
      return formatTable(
        ['ID', 'PID', 'SLOT', 'GEN', 'STATE', 'APPS'],
        data.dirty.map((d) => [
          String(d.id),
          d.pid === undefined ? '-' : String(d.pid),
          String(d.slot),
          String(d.generation),
          d.state,
          d.apps.join(','),
        ]),
      )
  }
}

function workersTable(workers: readonly WorkerRow[]): string {
  return formatTable(
    ['PID', 'GEN', 'STATE', 'AGE', 'REQUESTS', 'INFLIGHT', 'CONNS', 'RSS', 'CPU%', 'HEARTBEAT'],
    workers.map((w) => [
      pidText(w),
      String(w.generation),
      w.state,
      duration(w.ageSeconds),
      String(w.requests),
      String(w.inFlight),
      String(w.connections),
      rss(w.rssBytes),
      cpu(w.cpuPercent),
      `${w.heartbeatAgeSeconds}s ago`,
    ]),
  )
}

/** Columns padded to their widest cell; numbers right-aligned. */
export function formatTable(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)))
  const numeric = headers.map((_, i) => rows.length > 0 && rows.every((r) => /^[\d.]+[a-zA-Z%]*$|^-$/.test(r[i] ?? '')))
  const line = (cells: readonly string[]) =>
    `${cells
      .map((c, i) => (numeric[i] ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd()}\n`
  return line(headers) + rows.map(line).join('')
}

function keyValues(pairs: readonly (readonly [string, string])[]): string {
  const width = Math.max(...pairs.map(([k]) => k.length))
  return pairs.map(([k, v]) => `${`${k}:`.padEnd(width + 2)}${v}\n`).join('')
}

export const pidText = (w: WorkerRow) => (w.pid === null ? '-' : String(w.pid))
export const rss = (bytes: number | null) => (bytes === null ? '-' : `${Math.round(bytes / 1048576)}M`)
export const cpu = (percent: number | null) => (percent === null ? '-' : percent.toFixed(1))

function duration(seconds: number): string {
  if (seconds < 60) return `${Math.floor(seconds)}s`
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m${Math.floor(seconds % 60)}s`
  return `${Math.floor(seconds / 3600)}h${Math.floor((seconds % 3600) / 60)}m`
}
