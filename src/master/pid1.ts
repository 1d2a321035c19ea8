// corral as PID 1 of a container with no init in front of it. PID 1 adopts
// every orphaned process of the container, and must wait() for each one or
// it stays a zombie. Node can only wait for the children it spawned itself
// (libuv calls waitpid with their pids, never -1), and setting SIGCHLD to
// SIG_IGN, which would make the kernel reap them, is not possible from
// JavaScript and would take the workers' exit statuses with it. So corral
// does not pretend: it says in one line what is missing and the fix.
// spec/deploy.md, "PID 1".

/** The warning to log when this master is PID 1, else undefined. */
export function withoutInitWarning(pid = process.pid): string | undefined {
  if (pid !== 1) return undefined
  return (
    'corral is PID 1 with no init process: orphans of the app stay zombies and USR2 is refused. ' +
    'Run it under an init: docker run --init, or tini as the entrypoint (ENTRYPOINT ["tini", "--", ...])'
  )
}
