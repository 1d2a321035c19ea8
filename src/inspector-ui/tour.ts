// The guided tour of gunicorn's design (its design chapter, section by
// section) on corral's charts: the one source of the tour panel in the
// playground and of spec/tour.md and spec/tour.zh-CN.md (written by
// scripts/tour-doc.ts; test/tour.test.ts fails when they are stale, and
// replays every step through the pure master to check it ends where its text
// says). Each step: its prose in English and Chinese, the transitions it is
// about (lit on the chart), the events that set the scene (`setup`) and the
// ones its "do it" fires (`act`), and where the chart must then be (`expect`).
// Chinese terms follow the Chinese translation of gunicorn's docs.
import type { MasterEvent, MasterInput } from '../../machines/master.ts'

export const LANGS = ['en', 'zh-CN'] as const
export type Lang = (typeof LANGS)[number]
export type Text = Readonly<Record<Lang, string>>

/** The sections of gunicorn's design chapter, in its order, with its headings. */
export const CHAPTER = {
  serverModel: { en: 'Server model', 'zh-CN': '服务器模型' },
  preFork: { en: 'Pre-fork explained', 'zh-CN': '解释pre-fork' },
  master: { en: 'The master', 'zh-CN': '主控master进程' },
  signals: { en: 'Its signals', 'zh-CN': '信号' },
  sync: { en: 'Sync workers', 'zh-CN': '同步workers' },
  async: { en: 'Async workers', 'zh-CN': '异步workers' },
  tornado: { en: 'Tornado workers', 'zh-CN': 'tornado workers' },
  choosing: { en: 'Choosing a worker type', 'zh-CN': '选择worker进程类型' },
  howMany: { en: 'How many workers?', 'zh-CN': '启动多少个workers?' },
} as const satisfies Record<string, Text>
export type Section = keyof typeof CHAPTER

/**
 * What "do it" does, one item at a time: a chart event as it is; `tick`
 * moves the clock on by that many ms; `allReady` reports every booting worker
 * ready; `exitStopping` has every stopping worker exit with code 0.
 */
export type TourAction =
  | { readonly event: MasterEvent }
  | { readonly tick: number }
  | { readonly allReady: true }
  | { readonly exitStopping: true }

/** A transition a step is about: its source state (a dotted path below the machine's root), its event, and its guard where the event has several. */
export interface TourTransition {
  readonly machine: 'master' | 'worker'
  readonly state: string
  readonly event: string
  readonly guard?: string
}

export interface TourStep {
  /** Stable, for links and tests. */
  readonly id: string
  readonly sections: readonly Section[]
  readonly title: Text
  /** A few sentences; `code` in backticks. */
  readonly text: Text
  /** What "do it" does, said as the reader would do it by hand. */
  readonly doIt: Text
  readonly transitions: readonly TourTransition[]
  /** The tests that pin this behaviour on real processes (file › test), beside test/tour.test.ts's replay. */
  readonly pinnedBy: readonly string[]
  /** From a fresh master (the tour's input), before "do it"'s own events: where the step starts. */
  readonly setup: readonly TourAction[]
  readonly act: readonly TourAction[]
  readonly expect: {
    /** The master chart's state, dotted (`active.running.steady`). */
    readonly state: string
    /** Commands "do it" must emit (by type; the master's start counts when there is no setup and no act). */
    readonly emitted: readonly string[]
    /** The master's rows for its workers, by status, in id order. */
    readonly workers: readonly string[]
  }
}

/** Every step starts from this master: 2 workers, 30 s timeouts, its clock at 0 (the playground's start). */
export const TOUR_INPUT: MasterInput = { settings: { workers: 2, timeout: 30, gracefulTimeout: 30 } }

const ready: TourAction = { allReady: true }
const ev = (event: MasterEvent): TourAction => ({ event })
const m = (state: string, event: string, guard?: string): TourTransition =>
  guard === undefined ? { machine: 'master', state, event } : { machine: 'master', state, event, guard }
const w = (state: string, event: string, guard?: string): TourTransition =>
  guard === undefined ? { machine: 'worker', state, event } : { machine: 'worker', state, event, guard }

export const TOUR: readonly TourStep[] = [
  {
    id: 'pre-fork',
    sections: ['serverModel', 'preFork'],
    title: {
      en: 'One master, workers started before any request',
      'zh-CN': '一个主进程，请求到来之前就启动的工作进程',
    },
    text: {
      en: 'gunicorn is a pre-fork server: a master process that never sees a client manages a set of worker processes, started before any request arrives, so none waits for a process to start. corral does the same, but Node has no `fork()`: the master binds the sockets, then starts each worker with `spawn`, a fresh Node that inherits the listening sockets as file descriptors; the kernel hands each new connection to whichever worker accepts first. The master starts in `booting`, whose entry `converge` asks for the first `spawnWorker` only: while it starts it has the machine to itself, so the first response comes sooner; the others are spawned once it is ready.',
      'zh-CN':
        'gunicorn 是 pre-fork 服务器：一个不接触任何客户端的主进程（主控master进程）管理一组工作进程（worker进程），它们在请求到来之前就已启动，所以没有请求需要等待进程启动。corral 也这样做，但 Node 没有 `fork()`：主进程先绑定套接字，再用 `spawn` 启动每个工作进程，即一个继承了监听套接字文件描述符的全新 Node 进程；内核把每个新连接交给最先 accept 的工作进程。主进程从 `booting` 开始，其入口动作 `converge` 只为第一个工作进程发出 `spawnWorker`：它启动时独占机器，第一个响应因此来得更早；其余的工作进程在它就绪后再启动。',
    },
    doIt: {
      en: 'Start a master with 2 workers.',
      'zh-CN': '启动一个有 2 个工作进程的主进程。',
    },
    transitions: [],
    pinnedBy: [
      'e2e-signals › scaling › -w 2 gives 2 workers; TTIN → 3; TTOU → 2',
      'master-machine › graph-generated paths',
    ],
    setup: [],
    act: [],
    expect: { state: 'active.booting', emitted: ['spawnWorker'], workers: ['booting'] },
  },
  {
    id: 'ready',
    sections: ['serverModel'],
    title: { en: 'The workers serve; the master only counts them', 'zh-CN': '工作进程处理请求，主进程只清点它们' },
    text: {
      en: "Each worker loads the app and tells the master it is ready (`WORKER_READY`); `markReady` counts it in, and `converge` spawns the rest once the first one is ready. Once all are ready, `booting: always [allReady]` moves to `running.steady` and emits `ready`. The master's chart has no request event at all: requests are the workers' business, and the master is not on their path.",
      'zh-CN':
        '每个工作进程加载应用后告诉主进程自己已就绪（`WORKER_READY`），`markReady` 把它计入；第一个就绪后，`converge` 启动其余的工作进程。全部就绪后，`booting: always [allReady]` 转到 `running.steady` 并发出 `ready`。主进程的状态图里根本没有“请求”事件：请求只归工作进程处理，主进程不在请求的路径上。',
    },
    doIt: { en: 'Report every booting worker ready.', 'zh-CN': '报告每个正在启动的工作进程已就绪。' },
    transitions: [m('active', 'WORKER_READY'), m('active.booting', 'always')],
    pinnedBy: [
      'e2e-signals › scaling › -w 2 gives 2 workers; TTIN → 3; TTOU → 2',
      'master-machine › graph-generated paths',
    ],
    setup: [],
    act: [ready],
    expect: { state: 'active.running.steady', emitted: ['ready'], workers: ['running', 'running'] },
  },
  {
    id: 'chld',
    sections: ['master', 'signals'],
    title: { en: 'The master is a loop: a worker dies (CHLD)', 'zh-CN': '主进程是一个循环：工作进程退出（CHLD）' },
    text: {
      en: "gunicorn's master is a loop that waits for signals and wakes up to look after its workers: on CHLD it reaps the dead one and starts another. In corral the loop is the shell's event stream, and the chart decides: a worker's exit is `WORKER_EXIT`, handled by `forget, converge`. A worker that dies young (within 5 s of its start) is respawned after a back-off that doubles with each such death, so a crash loop does not spin; the clock only moves by `TICK`, and the tick after the back-off spawns the replacement.",
      'zh-CN':
        'gunicorn 的主进程是一个循环：等待信号，醒来照看工作进程；收到 CHLD 时回收退出的工作进程并启动新的。在 corral 里，这个循环是外壳的事件流，由状态图做决定：工作进程退出即 `WORKER_EXIT`，由 `forget, converge` 处理。启动后 5 秒内就退出的工作进程要等一段退避时间才重启，每次这样的退出都让退避时间加倍，崩溃循环因此不会空转；时钟只随 `TICK` 前进，退避之后的那次 tick 启动替代的工作进程。',
    },
    doIt: {
      en: 'Worker 1 exits with code 1, then the clock moves on 1 s.',
      'zh-CN': '工作进程 1 以退出码 1 退出，然后时钟前进 1 秒。',
    },
    transitions: [m('active', 'WORKER_EXIT'), m('active', 'TICK')],
    pinnedBy: [
      'e2e-signals › replaces a worker killed with SIGKILL',
      'e2e-lifecycle › boot failures › a crash loop after boot backs off instead of spinning',
    ],
    setup: [ready],
    act: [ev({ type: 'WORKER_EXIT', id: 1, code: 1, signal: null }), { tick: 1000 }],
    expect: {
      state: 'active.running.steady',
      emitted: ['workerExited', 'spawnWorker'],
      workers: ['running', 'booting'],
    },
  },
  {
    id: 'timeout',
    sections: ['master', 'sync', 'async', 'choosing'],
    title: {
      en: 'The heartbeat: a long request is fine, a stuck loop is not',
      'zh-CN': '心跳：长请求没关系，卡住的事件循环不行',
    },
    text: {
      en: "gunicorn kills a worker that has not notified the master for `--timeout` seconds; for its sync workers that means a request that takes too long. A Node worker is asynchronous by nature, like gunicorn's async workers: while it waits on a slow client, a long poll or a WebSocket its event loop still runs, and it sends a `HEARTBEAT` every `timeout / 2`. Only a loop that is blocked (a CPU-bound handler, synchronous I/O) stops the heartbeat: `active: TICK / tick` finds it overdue and emits `abortWorker`, whose shell logs the worker's stuck JavaScript stack before SIGKILL. The chapter puts a buffering proxy in front of sync workers because a slow client (Slowloris) ties one up; a slow client does not tie up a Node worker, and corral bounds slow clients with timeouts of its own. Here worker 1 keeps beating and worker 2 is stuck: it is aborted, and a new worker takes its place.",
      'zh-CN':
        'gunicorn 会杀掉超过 `--timeout` 秒没有通知主进程的工作进程；对同步 worker 来说，这意味着一个耗时过长的请求。Node 的工作进程天生是异步的，就像 gunicorn 的异步 worker：它在等待慢客户端、长轮询或 WebSocket 时，事件循环照常运转，每隔 `timeout / 2` 发送一次 `HEARTBEAT`。只有被阻塞的事件循环（CPU 密集的处理函数、同步 I/O）才会停止心跳：`active: TICK / tick` 发现它超时，发出 `abortWorker`，外壳先记录该工作进程卡住的 JavaScript 调用栈，再发送 SIGKILL。设计文档建议在同步 worker 前面放一个有缓冲的代理，因为一个慢客户端（Slowloris）就能占住一个同步 worker；慢客户端占不住 Node 的工作进程，corral 还用自己的超时限制慢客户端。这里工作进程 1 一直有心跳，工作进程 2 卡住了：它被中止，一个新的工作进程接替它。',
    },
    doIt: {
      en: 'Move the clock on 16 s, worker 1 heartbeats, move it on 16 s more.',
      'zh-CN': '时钟前进 16 秒，工作进程 1 发送心跳，时钟再前进 16 秒。',
    },
    transitions: [m('active', 'HEARTBEAT'), m('active', 'TICK')],
    pinnedBy: [
      'e2e-lifecycle › heartbeat › replaces a worker stuck in an endless loop',
      'stack-capture',
      'faults-slowloris',
    ],
    setup: [ready],
    act: [{ tick: 16_000 }, ev({ type: 'HEARTBEAT', id: 1 }), { tick: 16_000 }],
    expect: {
      state: 'active.running.steady',
      emitted: ['abortWorker', 'spawnWorker'],
      workers: ['running', 'killed', 'booting'],
    },
  },
  {
    id: 'ttin-ttou',
    sections: ['signals', 'howMany'],
    title: { en: 'How many workers: TTIN and TTOU', 'zh-CN': '启动多少个工作进程：TTIN 和 TTOU' },
    text: {
      en: "gunicorn suggests `(2 × cores) + 1` sync workers, because a sync worker blocks on I/O and leaves its core idle meanwhile, and then tuning with TTIN (one worker more) and TTOU (one fewer, never below 1). A Node worker does not block on I/O, so more workers than cores only add memory and context switches: corral's default is one worker per core, or `$WEB_CONCURRENCY`. TTIN and TTOU change the target (`ttin`, `ttou`) and `converge` spawns or stops workers to reach it; a HUP re-reads `-w`.",
      'zh-CN':
        'gunicorn 建议同步 worker 的数量为 `(2 x $num_cores) + 1`，因为同步 worker 在 I/O 上阻塞，阻塞期间它的核心是空闲的；然后再用 TTIN（增加一个工作进程）和 TTOU（减少一个，最少为 1）调整。Node 的工作进程不会在 I/O 上阻塞，工作进程多于核心数只会增加内存和上下文切换：corral 默认每个核心一个工作进程，或取 `$WEB_CONCURRENCY`。TTIN 和 TTOU 改变目标数（`ttin`、`ttou`），`converge` 启动或停止工作进程以达到目标；HUP 会重新读取 `-w`。',
    },
    doIt: { en: 'Send TTIN twice, then TTOU once.', 'zh-CN': '发送两次 TTIN，再发送一次 TTOU。' },
    transitions: [m('active', 'TTIN'), m('active', 'TTOU')],
    pinnedBy: ['e2e-signals › scaling', 'config-hup'],
    setup: [ready],
    act: [ev({ type: 'TTIN' }), ev({ type: 'TTIN' }), ev({ type: 'TTOU' })],
    expect: {
      state: 'active.running.steady',
      emitted: ['workersChanged', 'spawnWorker', 'stopWorker'],
      workers: ['stopping', 'running', 'booting', 'booting'],
    },
  },
  {
    id: 'hup',
    sections: ['signals'],
    title: { en: 'HUP: reload without dropping a request', 'zh-CN': 'HUP：重新加载，不丢一个请求' },
    text: {
      en: 'HUP reloads the settings and the app. The chart first asks the shell to re-read the settings (`active: HUP / readSettings`), which it does beside the event stream, so a TERM sent meanwhile is not held up by a slow config file; its answer, `SETTINGS_READ`, starts the reload: a new generation of workers boots beside the old one (`steady: SETTINGS_READ` → `reloading`, whose entry `startGeneration` spawns it), and only when all of it is ready does `reloading: always [allReady] / retireOldGenerations` stop the old workers gracefully. Since a worker is a fresh `spawn`, not a fork of a master that loaded the app, each new worker reads the code from disk. A HUP during a reload is queued, never a second overlapping generation.',
      'zh-CN':
        'HUP 重新加载配置和应用。状态图先请外壳重新读取配置（`active: HUP / readSettings`），外壳在事件流之外读取，所以读取一个很慢的配置文件时，期间发来的 TERM 不会被耽搁；它的答复 `SETTINGS_READ` 开始重新加载：新一代工作进程在旧一代旁边启动（`steady: SETTINGS_READ` → `reloading`，其入口动作 `startGeneration` 启动新一代），只有当新一代全部就绪时，`reloading: always [allReady] / retireOldGenerations` 才平滑地停止旧的工作进程。由于每个工作进程都是新 `spawn` 出来的，而不是从加载了应用的主进程 fork 出来的，每个新工作进程都从磁盘读取代码。重新加载期间再收到的 HUP 会排队，绝不会同时出现两个重叠的新一代。',
    },
    doIt: {
      en: 'Send HUP, answer its readSettings with the settings unchanged (SETTINGS_READ), then report the new workers ready.',
      'zh-CN': '发送 HUP，以不变的配置答复它的 readSettings（SETTINGS_READ），然后报告新的工作进程已就绪。',
    },
    transitions: [
      m('active', 'HUP'),
      m('active.running.steady', 'SETTINGS_READ'),
      m('active.running.reloading', 'always'),
    ],
    pinnedBy: ['e2e-signals › reload (HUP)', 'faults-hup'],
    setup: [ready],
    act: [ev({ type: 'HUP' }), ev({ type: 'SETTINGS_READ' }), ready],
    expect: {
      state: 'active.running.steady',
      emitted: ['readSettings', 'reloadStarted', 'spawnWorker', 'reloadCompleted', 'stopWorker'],
      workers: ['stopping', 'stopping', 'running', 'running'],
    },
  },
  {
    id: 'graceful-stop',
    sections: ['signals'],
    title: { en: 'TERM and QUIT: a graceful stop', 'zh-CN': 'TERM 和 QUIT：平滑关闭' },
    text: {
      en: 'The translated chapter lists QUIT as the graceful stop and INT and TERM as immediate; gunicorn today stops gracefully on TERM too, and so does corral, because TERM is what Docker, Kubernetes and systemd send. `active: TERM` → `draining.graceful`, whose entry tells every worker to stop: each stops accepting, finishes the requests in flight and exits; one still there after `--graceful-timeout` is SIGKILLed. When none is left, `draining: always [noWorkersLeft]` → `dead`, exiting 0.',
      'zh-CN':
        '这份中文翻译把 QUIT 列为正常关闭，把 INT 和 TERM 列为立即关闭；如今的 gunicorn 收到 TERM 也会平滑关闭，corral 也是如此，因为 Docker、Kubernetes 和 systemd 发送的正是 TERM。`active: TERM` → `draining.graceful`，其入口动作通知每个工作进程停止：工作进程不再接受新连接，处理完正在进行的请求后退出；超过 `--graceful-timeout` 仍未退出的会被 SIGKILL。没有工作进程剩下时，`draining: always [noWorkersLeft]` → `dead`，退出码为 0。',
    },
    doIt: {
      en: 'Send TERM, then let each stopping worker exit.',
      'zh-CN': '发送 TERM，然后让每个正在停止的工作进程退出。',
    },
    transitions: [
      m('active', 'TERM'),
      m('active', 'QUIT'),
      m('draining', 'always'),
      w('running', 'SIGNAL', 'isGraceful'),
    ],
    pinnedBy: ['e2e-signals › stopping › lets an in-flight 1.5 s request finish with 200'],
    setup: [ready],
    act: [ev({ type: 'TERM' }), { exitStopping: true }],
    expect: { state: 'dead', emitted: ['stopWorker', 'exit'], workers: [] },
  },
  {
    id: 'quick-stop',
    sections: ['signals'],
    title: { en: 'INT: a quick stop', 'zh-CN': 'INT：快速关闭' },
    text: {
      en: 'INT (Ctrl-C) stops quickly: `active: INT` → `draining.quick`, whose entry tells every worker to close now, and whatever is still alive after at most 1 s is SIGKILLed on the next tick (`killWorker`). A second TERM or INT during a graceful stop turns it into a quick one (`draining.graceful: TERM` → `quick`).',
      'zh-CN':
        'INT（Ctrl-C）快速关闭：`active: INT` → `draining.quick`，其入口动作通知每个工作进程立即关闭，最多 1 秒后仍存活的会在下一次 tick 时被 SIGKILL（`killWorker`）。平滑关闭期间再收到 TERM 或 INT，就转为快速关闭（`draining.graceful: TERM` → `quick`）。',
    },
    doIt: { en: 'Send INT, then move the clock on 1 s.', 'zh-CN': '发送 INT，然后时钟前进 1 秒。' },
    transitions: [m('active', 'INT'), m('draining', 'TICK'), m('draining.graceful', 'TERM')],
    pinnedBy: ['e2e-signals › INT stops quickly', 'e2e-signals › a second TERM'],
    setup: [ready],
    act: [ev({ type: 'INT' }), { tick: 1000 }],
    expect: { state: 'draining.quick', emitted: ['stopWorker', 'killWorker'], workers: ['killed', 'killed'] },
  },
  {
    id: 'usr1',
    sections: ['signals'],
    title: { en: 'USR1: reopen the log files', 'zh-CN': 'USR1：重新打开日志文件' },
    text: {
      en: "USR1 reopens the log files, after logrotate moved them: `active: USR1 / reopenLogs`. gunicorn passes the signal on to its workers; corral tells them over the IPC channel instead, because in a Node process SIGUSR1 belongs to Node (it starts the inspector), and corral uses exactly that to read a stuck worker's stack.",
      'zh-CN':
        'USR1 在 logrotate 移走日志文件之后重新打开它们：`active: USR1 / reopenLogs`。gunicorn 把这个信号转发给工作进程；corral 则通过 IPC 通道通知它们，因为在 Node 进程里 SIGUSR1 归 Node 所有（它会启动调试器），而 corral 正是靠它读取卡住的工作进程的调用栈。',
    },
    doIt: { en: 'Send USR1.', 'zh-CN': '发送 USR1。' },
    transitions: [m('active', 'USR1')],
    pinnedBy: ['e2e-signals › USR1 reopens logs'],
    setup: [ready],
    act: [ev({ type: 'USR1' })],
    expect: { state: 'active.running.steady', emitted: ['reopenLogs'], workers: ['running', 'running'] },
  },
  {
    id: 'usr2',
    sections: ['signals'],
    title: { en: 'USR2: a new master beside the old one', 'zh-CN': 'USR2：在旧主进程旁边启动新的主进程' },
    text: {
      en: 'USR2 upgrades the master itself: `steady: USR2 [noChildMaster]` → `reexecing`. The preExec hook runs first (`preExec`); then `reexec` starts a new master, with the same command line and the code read anew from disk, as a child that inherits the listening sockets. If it dies before it is ready, the old one rolls back; once it reports ready (`REEXEC_READY`) both serve, until the operator finishes (WINCH, then QUIT to the old one) or rolls back.',
      'zh-CN':
        'USR2 升级主进程本身：`steady: USR2 [noChildMaster]` → `reexecing`。先运行 preExec 钩子（`preExec`），然后 `reexec` 以相同的命令行启动一个新的主进程，代码重新从磁盘读取，它作为子进程继承监听套接字。如果它在就绪之前退出，旧主进程就回滚；一旦它报告就绪（`REEXEC_READY`），新旧两个主进程同时提供服务，直到运维人员完成切换（先 WINCH，再向旧主进程发送 QUIT）或回滚。',
    },
    doIt: {
      en: 'Send USR2, report the preExec hook done, then the new master ready.',
      'zh-CN': '发送 USR2，报告 preExec 钩子已完成，再报告新主进程已就绪。',
    },
    transitions: [
      m('active.running.steady', 'USR2', 'noChildMaster'),
      m('active.reexecing.preExec', 'PRE_EXEC_DONE'),
      m('active.reexecing.starting', 'REEXEC_READY'),
      m('active.reexecing.starting', 'REEXEC_EXIT'),
    ],
    pinnedBy: ['e2e-upgrade › USR2 → WINCH → QUIT', 'e2e-upgrade › rolls back'],
    setup: [ready],
    act: [ev({ type: 'USR2' }), ev({ type: 'PRE_EXEC_DONE' }), ev({ type: 'REEXEC_READY' })],
    expect: { state: 'active.running.steady', emitted: ['preExec', 'reexec'], workers: ['running', 'running'] },
  },
  {
    id: 'winch',
    sections: ['signals'],
    title: { en: 'WINCH: stop the workers, keep the master', 'zh-CN': 'WINCH：停止工作进程，保留主进程' },
    text: {
      en: "WINCH stops every worker gracefully and keeps the master, holding the sockets: after a USR2, the old master's workers leave to the new master's. gunicorn takes it only when daemonized, because a terminal sends WINCH whenever its window is resized; corral takes it whenever no terminal can have sent it (a service, a daemon, `corral ctl`): `steady: WINCH [notFromTerminal]` → `running.idle`, whose entry stops the workers. A HUP from there starts workers again once its settings are read (`idle: SETTINGS_READ` → `reloading`: the rollback); QUIT ends it.",
      'zh-CN':
        'WINCH 平滑地停止所有工作进程，保留主进程及其套接字：USR2 之后，旧主进程的工作进程退出，交给新主进程的工作进程。gunicorn 只在以守护进程运行时才处理它，因为终端窗口每次改变大小都会发送 WINCH；corral 则在不可能由终端发出时处理它（服务、守护进程、`corral ctl`）：`steady: WINCH [notFromTerminal]` → `running.idle`，其入口动作停止工作进程。在那里收到 HUP，读完配置后就会重新启动工作进程（`idle: SETTINGS_READ` → `reloading`：回滚），QUIT 则结束主进程。',
    },
    doIt: {
      en: 'After a USR2 whose new master is ready, send WINCH (not from a terminal).',
      'zh-CN': '在一次新主进程已就绪的 USR2 之后，发送 WINCH（不是由终端发出的）。',
    },
    transitions: [m('active.running.steady', 'WINCH'), m('active.running.idle', 'SETTINGS_READ')],
    pinnedBy: [
      'e2e-terminal › with no terminal, WINCH stops every worker and the master stays',
      'e2e-terminal › npx corral, resized three times, keeps every worker serving',
      'e2e-upgrade › USR2 → WINCH → QUIT',
    ],
    setup: [ready, ev({ type: 'USR2' }), ev({ type: 'PRE_EXEC_DONE' }), ev({ type: 'REEXEC_READY' })],
    act: [ev({ type: 'WINCH', fromTerminal: false })],
    expect: { state: 'active.running.idle', emitted: ['stopWorker'], workers: ['stopping', 'stopping'] },
  },
  {
    id: 'worker-types',
    sections: ['sync', 'async', 'tornado', 'choosing'],
    title: { en: 'Worker types, and why Node needs one', 'zh-CN': 'worker 类型，以及为什么 Node 只需要一种' },
    text: {
      en: "gunicorn offers sync workers (one request at a time), threads (gthread), async workers on greenlets (eventlet, gevent) and Tornado's, because a Python process serves one request at a time unless a library or threads make it concurrent. A Node process is an event loop already, which is what eventlet and gevent add to Python: one worker type (`machines/worker.ts`: `booting → starting → running → draining → dead`) serves many connections at once, slow clients, long polling and WebSockets included. What gunicorn spreads over worker classes is the app's choice here: a `(req, res)` or fetch handler, or the app's own `listen()`, for any framework (Tornado's place), `worker_threads` inside the app for CPU-bound work (gthread's), the `--timeout` heartbeat for a loop that blocks (what sync workers guard against).",
      'zh-CN':
        'gunicorn 提供同步 worker（一次处理一个请求）、线程 worker（gthread）、基于 greenlet 的异步 worker（eventlet、gevent）和 tornado worker，因为 Python 进程一次只处理一个请求，除非有库或线程让它并发。Node 进程本身就是一个事件循环，这正是 eventlet 和 gevent 给 Python 添加的东西：一种工作进程（`machines/worker.ts`：`booting → starting → running → draining → dead`）就能同时处理许多连接，包括慢客户端、长轮询和 WebSocket。gunicorn 分给各种 worker 类型的事，在这里是应用自己的选择：任何框架都以 `(req, res)` 或 fetch 处理函数、或者应用自己的 `listen()` 提供（相当于 tornado worker），CPU 密集的工作放进应用内的 `worker_threads`（相当于 gthread），阻塞的事件循环由 `--timeout` 心跳处理（同步 worker 所防范的情况）。',
    },
    doIt: {
      en: 'Stop worker 1 as `corral ctl worker kill` does: it drains, and the master starts another.',
      'zh-CN': '像 `corral ctl worker kill` 那样停止工作进程 1：它进入排空，主进程另启动一个。',
    },
    transitions: [m('active', 'KILL_WORKER'), w('running', 'SIGNAL', 'isGraceful'), w('draining', 'DRAINED')],
    pinnedBy: ['worker-machine', 'e2e-control › commands no signal has'],
    setup: [ready],
    act: [ev({ type: 'KILL_WORKER', id: 1 })],
    expect: {
      state: 'active.running.steady',
      emitted: ['stopWorker', 'spawnWorker'],
      workers: ['stopping', 'running', 'booting'],
    },
  },
]
