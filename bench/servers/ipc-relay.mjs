// "A plain call through the master" for bench/dirty.ts: the caller's message
// goes over IPC to this relay process, which forwards it over IPC to a
// target that echoes it, and back the same way (structured clone both hops).
import { fork } from 'node:child_process'

if (process.argv[2] === 'target') {
  process.on('message', (message) => process.send(message))
} else {
  const target = fork(new URL(import.meta.url).pathname, ['target'], { serialization: 'advanced' })
  process.on('message', (message) => target.send(message))
  target.on('message', (message) => process.send(message))
  process.on('disconnect', () => {
    target.kill()
    process.exit(0)
  })
}
