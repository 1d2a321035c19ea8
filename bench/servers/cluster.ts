// node:cluster with round-robin scheduling (the Linux default, set
// explicitly here): the primary accepts every connection and passes it to a
// worker over IPC. Workers run bench/servers/http.ts, or $EXEC.
//   PORT=8000 WORKERS=1 node bench/servers/cluster.ts
import cluster from 'node:cluster'
import { fileURLToPath } from 'node:url'

cluster.schedulingPolicy = cluster.SCHED_RR
cluster.setupPrimary({ exec: process.env.EXEC ?? fileURLToPath(new URL('./http.ts', import.meta.url)) })
const workers = Number(process.env.WORKERS ?? 1)
for (let i = 0; i < workers; i++) cluster.fork()
const stop = () => {
  for (const w of Object.values(cluster.workers ?? {})) w?.kill()
  process.exit(0)
}
process.on('SIGTERM', stop)
process.on('SIGINT', stop)
