// How many connections wait in the kernel's accept queue of each listening
// socket: the first sign that every worker is busy (spec/metrics.md). Read
// from what Linux already reports, without native modules: for TCP,
// /proc/net/tcp{,6}, whose rx_queue column of a LISTEN socket is its accept
// queue; for unix sockets, `ss -xl`, whose Recv-Q of a listening socket is
// the same (/proc/net/unix has no queue column). Sockets are matched by
// inode, from /proc/self/fd, so the reading is exact for the master's own
// fds whatever address they are bound to. Elsewhere than Linux: null.
import { execFile } from 'node:child_process'

// node:fs/promises when a reading is asked for, not at start (spec/architecture.md).
const fsPromises = () => process.getBuiltinModule('node:fs/promises')

/** The accept-queue length of each listening fd of this process; null where the kernel does not say. */
export async function acceptQueueLengths(fds: readonly number[]): Promise<Map<number, number | null>> {
  const inodes = new Map<number, string>()
  for (const fd of fds) {
    const target = await fsPromises()
      .readlink(`/proc/self/fd/${fd}`)
      .catch(() => '')
    const m = /^socket:\[(\d+)\]$/.exec(target)
    if (m) inodes.set(fd, m[1]!)
  }
  const queues = inodes.size === 0 ? new Map<string, number>() : await queuesByInode(new Set(inodes.values()))
  return new Map(fds.map((fd) => [fd, queues.get(inodes.get(fd) ?? '') ?? null]))
}

async function queuesByInode(wanted: ReadonlySet<string>): Promise<Map<string, number>> {
  const queues = new Map<string, number>()
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    const text = await fsPromises()
      .readFile(file, 'utf8')
      .catch(() => '')
    for (const [inode, queue] of parseProcNetTcp(text)) if (wanted.has(inode)) queues.set(inode, queue)
  }
  // ss is a process to start: only when some socket was not a TCP one.
  if (queues.size === wanted.size) return queues
  for (const [inode, queue] of parseSsUnix(await ssUnixListening())) queues.set(inode, queue)
  return queues
}

// sl: local rem st(0A = LISTEN) tx_queue:rx_queue tr:when retrnsmt uid timeout inode. One pass of a
// regex that only LISTEN lines match: on a busy host the file has thousands of
// connection lines, and splitting them all would make every scrape allocate megabytes.
const TCP_LISTEN_LINE = /^ *\d+: [\dA-F]+:[\dA-F]+ [\dA-F]+:[\dA-F]+ 0A [\dA-F]+:([\dA-F]+) \S+ \S+ +\d+ +\d+ (\d+)/gm

/** `/proc/net/tcp` → [inode, accept-queue length] for LISTEN sockets. */
export function parseProcNetTcp(text: string): [string, number][] {
  const out: [string, number][] = []
  for (const m of text.matchAll(TCP_LISTEN_LINE)) out.push([m[2]!, Number.parseInt(m[1]!, 16)])
  return out
}

// u_str LISTEN RECV-Q SEND-Q PATH INODE * 0 …  (the path may hold spaces)
const SS_UNIX_LISTEN = /^u_\w+\s+LISTEN\s+(\d+)\s+\d+\s+.*?\s(\d+)\s+\*\s+\d+/

/** `ss -xlnH` → [inode, accept-queue length]. */
export function parseSsUnix(text: string): [string, number][] {
  const out: [string, number][] = []
  for (const line of text.split('\n')) {
    const m = SS_UNIX_LISTEN.exec(line)
    if (m) out.push([m[2]!, Number(m[1])])
  }
  return out
}

function ssUnixListening(): Promise<string> {
  return new Promise((resolve) =>
    execFile('ss', ['-xlnH'], { timeout: 2000 }, (err, stdout) => resolve(err ? '' : stdout)),
  )
}
