// Where is a stuck worker stuck? (spec/signals.md, heartbeat)
//
// Workers run with `--inspect-port=127.0.0.1:0`, which costs nothing until
// used. SIGUSR1 makes Node's native signal handler start the inspector even
// while JavaScript spins; the worker announces the ws:// URL on its stderr,
// which the master reads through the forwarder below; a Debugger.pause over
// that WebSocket yields the call frames. A worker that installed its own JS
// SIGUSR1 listener takes the signal away from the inspector: capture then
// times out and returns undefined.

import type { ChildProcess } from 'node:child_process'

export interface StderrForwarder {
  /** The inspector's ws:// URL, once the child has announced it. */
  readonly inspectorUrl: string | undefined
  /** Resolves with the URL (at once if already known), or undefined on timeout or when stderr ends. */
  waitForInspectorUrl(timeoutMs: number): Promise<string | undefined>
}

const ANNOUNCE = /^(.*?)Debugger listening on (ws:\/\/\S+)\s*$/
// What Node's inspector prints by itself; a failure to start it is not
// listed, so it reaches the log.
const INSPECTOR_NOISE = [
  /^For help, see: https:\/\/nodejs\.org\/\S*$/,
  /^Debugger attached\.$/,
  /^Debugger ending on ws:\/\/\S+$/,
  /^Waiting for the debugger to disconnect\.\.\.$/,
]
// A child that never prints a newline must not grow the buffer forever.
const MAX_LINE = 64 * 1024

/**
 * Reads a child's piped stderr line by line and hands every line to `write`,
 * except the inspector's own messages, whose URL it keeps for capture.
 */
export function createStderrForwarder(
  child: Pick<ChildProcess, 'stderr'>,
  write: (line: string) => void,
): StderrForwarder {
  const stderr = child.stderr
  if (!stderr) throw new TypeError('createStderrForwarder: the child was spawned without a piped stderr')
  let url: string | undefined
  let ended = false
  const waiters = new Set<(url: string | undefined) => void>()
  const wake = (): void => {
    for (const w of waiters) w(url)
    waiters.clear()
  }

  const onLine = (line: string): void => {
    const m = ANNOUNCE.exec(line)
    if (m) {
      // The announcement comes from a native thread and can land after a
      // partial line the app had written: keep that part.
      if (m[1]) write(m[1])
      url = m[2]
      wake()
      return
    }
    if (!INSPECTOR_NOISE.some((re) => re.test(line))) write(line)
  }

  let buf = ''
  stderr.setEncoding('utf8')
  stderr.on('data', (chunk: string) => {
    buf += chunk
    for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
      onLine(buf.slice(0, nl).replace(/\r$/, ''))
      buf = buf.slice(nl + 1)
    }
    if (buf.length > MAX_LINE) {
      onLine(buf)
      buf = ''
    }
  })
  stderr.on('close', () => {
    if (buf) onLine(buf)
    buf = ''
    ended = true
    wake()
  })

  return {
    get inspectorUrl() {
      return url
    },
    waitForInspectorUrl(timeoutMs) {
      if (url || ended) return Promise.resolve(url)
      return new Promise((resolve) => {
        const done = (u: string | undefined): void => {
          clearTimeout(timer)
          waiters.delete(done)
          resolve(u)
        }
        const timer = setTimeout(() => done(undefined), Math.max(0, timeoutMs))
        waiters.add(done)
      })
    },
  }
}

/**
 * Asks a (stuck) worker for its JavaScript stack: `fn (url:line:col)` per
 * frame, innermost first, or undefined when anything fails or takes longer
 * than `timeoutMs` overall. Never throws; the caller SIGKILLs regardless.
 */
export async function captureStuckStack(
  pid: number,
  forwarder: StderrForwarder,
  timeoutMs = 2000,
): Promise<string[] | undefined> {
  const deadline = Date.now() + timeoutMs
  try {
    process.kill(pid, 'SIGUSR1')
  } catch {
    return undefined
  }
  const url = await forwarder.waitForInspectorUrl(deadline - Date.now())
  // The URL was read from a stream the app writes to as well: only ever
  // connect to this machine.
  if (!url || !isLoopback(url)) return undefined
  return pauseAndRead(url, deadline - Date.now())
}

function isLoopback(url: string): boolean {
  try {
    const { protocol, hostname } = new URL(url)
    return protocol === 'ws:' && (hostname === '127.0.0.1' || hostname === '[::1]' || hostname === 'localhost')
  } catch {
    return false
  }
}

interface CallFrame {
  functionName?: string
  url?: string
  location?: { scriptId?: string; lineNumber?: number; columnNumber?: number }
}

function pauseAndRead(url: string, timeoutMs: number): Promise<string[] | undefined> {
  if (timeoutMs <= 0) return Promise.resolve(undefined)
  return new Promise((resolve) => {
    let ws: WebSocket
    try {
      ws = new WebSocket(url)
    } catch {
      resolve(undefined)
      return
    }
    // callFrames[].url is empty on Node 24: names come from scriptParsed,
    // which Debugger.enable replays for every loaded script.
    const scripts = new Map<string, string>()
    let settled = false
    const finish = (frames: string[] | undefined): void => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      try {
        ws.close()
      } catch {
        // already closing
      }
      resolve(frames)
    }
    const timer = setTimeout(() => finish(undefined), timeoutMs)
    ws.onopen = () => {
      ws.send(JSON.stringify({ id: 1, method: 'Debugger.enable' }))
      ws.send(JSON.stringify({ id: 2, method: 'Debugger.pause' }))
    }
    ws.onmessage = (ev: MessageEvent) => {
      if (typeof ev.data !== 'string') return
      let msg: { method?: string; params?: { scriptId?: string; url?: string; callFrames?: CallFrame[] } }
      try {
        msg = JSON.parse(ev.data) as typeof msg
      } catch {
        return
      }
      if (msg.method === 'Debugger.scriptParsed' && msg.params?.scriptId) {
        scripts.set(msg.params.scriptId, msg.params.url ?? '')
      } else if (msg.method === 'Debugger.paused') {
        finish((msg.params?.callFrames ?? []).map((f) => formatFrame(f, scripts)))
      }
    }
    ws.onerror = () => finish(undefined)
    ws.onclose = () => finish(undefined)
  })
}

function formatFrame(f: CallFrame, scripts: Map<string, string>): string {
  const name = f.functionName || '(anonymous)'
  const file = f.url || scripts.get(f.location?.scriptId ?? '') || '<unknown>'
  // CDP positions are 0-based; stack traces and editors count from 1.
  const line = (f.location?.lineNumber ?? -1) + 1
  const col = (f.location?.columnNumber ?? -1) + 1
  return `${name} (${file}:${line}:${col})`
}
