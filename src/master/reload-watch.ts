// --reload (development): watch the app's source files, and the files named
// by --reload-extra-files, and reload the workers when one changes, as a HUP
// does. See spec/process.md.
//
// The app's files are the source files (.ts .mts .cts .js .mjs .cjs .json)
// in the app module's directory and below it, except in node_modules and in
// dot-directories: what an app imports from its own tree. One inotify watch
// per directory (walked here, not fs.watch's `recursive`, which would also
// descend into node_modules); a directory created later is watched once it
// appears. Changes are debounced: a burst of saves is one reload.
import { globSync, readdirSync, statSync, watch, type Dirent, type FSWatcher, type Stats } from 'node:fs'
import { basename, dirname, isAbsolute, join, matchesGlob, relative, resolve, sep } from 'node:path'
import * as Effect from 'effect/Effect'
import * as Queue from 'effect/Queue'
import * as Stream from 'effect/Stream'
import type { Signal } from '../../machines/master.ts'
import { parseAppSpec, resolveApp } from '../http/app.ts'
import type { Logger } from '../logging/log.ts'

export const DEBOUNCE_MS = 200
const SOURCE = /\.(?:[cm]?[jt]s|json)$/
const skipped = (name: string) => name === 'node_modules' || name.startsWith('.')

interface ReloadWatchOptions {
  /** The APP argument: its module's directory is watched. */
  readonly app: string
  /** --reload-extra-files: paths or globs, relative to `cwd`. */
  readonly extraFiles: readonly string[]
  readonly onChange: (paths: string[]) => void
  readonly cwd?: string
  readonly debounceMs?: number
}

interface ReloadWatch {
  /** Directories watched now. */
  readonly dirs: () => string[]
  close(): void
}

/** Where a glob's fixed part ends: `src/**\/*.ts` → `src`. */
function globBase(pattern: string): string {
  const parts = pattern.split(sep)
  const fixed: string[] = []
  for (const p of parts) {
    if (/[*?[\]{}]/.test(p)) break
    fixed.push(p)
  }
  return fixed.join(sep) || sep
}

function watchForReload({
  app,
  extraFiles,
  onChange,
  cwd = process.cwd(),
  debounceMs = DEBOUNCE_MS,
}: ReloadWatchOptions): ReloadWatch {
  // The module itself (a directory's main, a package's entry): its directory is the tree watched.
  const appFile = resolveApp(parseAppSpec(app, cwd), cwd).file
  const appDir = dirname(appFile)
  const extras = extraFiles.map((p) => (isAbsolute(p) ? p : resolve(cwd, p)))
  /**
   * Each watched directory, with the inode and birth time it had when
   * watched: a directory removed and created again at once may get the same
   * inode number back, but not the same birth time.
   */
  const watchers = new Map<string, { readonly watcher: FSWatcher; readonly ino: number; readonly born: number }>()
  const pending = new Set<string>()
  let timer: NodeJS.Timeout | undefined
  let closed = false

  const inAppTree = (path: string) => {
    const rel = relative(appDir, path)
    return rel === '' || (!rel.startsWith('..') && !isAbsolute(rel) && !rel.split(sep).some(skipped))
  }
  // Not a dotfile: an editor's lock or swap file (.#app.ts) is no change.
  const isAppSource = (path: string) => SOURCE.test(path) && !skipped(basename(path)) && inAppTree(dirname(path))
  const isExtra = (path: string) => extras.some((p) => p === path || matchesGlob(path, p))

  function changed(path: string): void {
    pending.add(path)
    clearTimeout(timer)
    timer = setTimeout(fire, debounceMs)
  }

  function fire(): void {
    if (closed) return
    const paths = [...pending].map((p) => relative(cwd, p) || p)
    pending.clear()
    // Files a glob matches now may live in directories not watched yet.
    watchExtras()
    onChange(paths)
  }

  function onEvent(dir: string, name: string | null): void {
    if (closed || name === null) return
    const path = join(dir, name)
    if (inAppTree(dir) && !skipped(name)) {
      let stats: Stats | undefined
      try {
        stats = statSync(path)
      } catch {
        // Removed: still a change if it was a source file. A watched
        // directory is forgotten, so that one created again is watched.
        unwatchTree(path)
      }
      if (stats?.isDirectory()) {
        // A new directory (or one moved in, or removed and created again
        // before this event was read): watch it; its files are news.
        const known = watchers.get(path)
        if (known?.ino !== stats.ino || known.born !== stats.birthtimeMs) {
          unwatchTree(path)
          watchTree(path)
          changed(path)
        }
        return
      }
    }
    if (isAppSource(path) || isExtra(path)) changed(path)
  }

  function watchDir(dir: string): void {
    if (watchers.has(dir)) return
    try {
      const { ino, birthtimeMs: born } = statSync(dir)
      const watcher = watch(dir, { persistent: false }, (_event, name) => onEvent(dir, name))
      watcher.on('error', () => {
        watcher.close()
        if (watchers.get(dir)?.watcher === watcher) watchers.delete(dir)
      })
      watchers.set(dir, { watcher, ino, born })
    } catch {
      // gone, or not readable: nothing to watch there
    }
  }

  function unwatchTree(dir: string): void {
    for (const [d, { watcher }] of watchers) {
      if (d === dir || d.startsWith(dir + sep)) {
        watcher.close()
        watchers.delete(d)
      }
    }
  }

  function watchTree(dir: string): void {
    watchDir(dir)
    let entries: Dirent[]
    try {
      entries = readdirSync(dir, { withFileTypes: true })
    } catch {
      return
    }
    for (const e of entries) if (e.isDirectory() && !skipped(e.name)) watchTree(join(dir, e.name))
  }

  function watchExtras(): void {
    for (const pattern of extras) {
      // A plain path: its directory, so that a file replaced by rename
      // (as editors save) stays watched. A glob: its fixed directory, and
      // the directory of every file it matches now.
      const base = globBase(pattern)
      watchDir(base === pattern ? dirname(pattern) : base)
      for (const file of globSync(pattern)) watchDir(dirname(file))
    }
  }

  watchTree(appDir)
  watchExtras()

  return {
    dirs: () => [...watchers.keys()],
    close() {
      closed = true
      clearTimeout(timer)
      for (const { watcher } of watchers.values()) watcher.close()
      watchers.clear()
    },
  }
}

/** "a.ts", "a.ts, b.ts", "a.ts, b.ts, c.ts and 4 more". */
function describePaths(paths: readonly string[]): string {
  const shown = paths.slice(0, 3).join(', ')
  return paths.length > 3 ? `${shown} and ${paths.length - 3} more` : shown
}

export interface ReloadSettings {
  readonly reload: boolean
  readonly reloadExtraFiles: readonly string[]
}

/**
 * For the master's input stream: a HUP whenever the watched files change
 * (nothing without --reload). Watching stops when the stream does.
 */
export function reloadRequests(settings: ReloadSettings, app: string, log: Logger): Stream.Stream<Signal> {
  if (!settings.reload) {
    if (settings.reloadExtraFiles.length > 0) log.warning('--reload-extra-files has no effect without --reload')
    return Stream.empty
  }
  return Stream.callback<Signal>((queue) =>
    Effect.acquireRelease(
      Effect.sync(() => {
        const w = watchForReload({
          app,
          extraFiles: settings.reloadExtraFiles,
          onChange: (paths) => {
            log.info(`Worker reloading: ${describePaths(paths)} modified`)
            Queue.offerUnsafe(queue, 'HUP')
          },
        })
        log.info(`Watching ${w.dirs().length} director${w.dirs().length === 1 ? 'y' : 'ies'} for changes (--reload)`)
        return w
      }),
      (w) => Effect.sync(() => w.close()),
    ),
  )
}
