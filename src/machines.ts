// What `import … from 'corral/machines'` gives: the master, worker and dirty
// pool statecharts, pure (no processes, sockets or clocks of their own), with the
// events they take and the commands they emit. Run them with xstate's
// createActor in tests, teaching material or the Stately editor.
export {
  masterMachine,
  SIGNALS,
  type MasterCommand,
  type MasterContext,
  type MasterEvent,
  type MasterInput,
  type Signal,
} from '../machines/master.ts'
export type { StopMode } from '../machines/master-workers.ts'
export {
  workerMachine,
  type WorkerCommand,
  type WorkerContext,
  type WorkerEvent,
  type WorkerSignal,
} from '../machines/worker.ts'
export {
  dirtyPoolMachine,
  type DirtyCommand,
  type DirtyContext,
  type DirtyEvent,
  type DirtyInput,
  type DirtySettings,
} from '../machines/dirty-pool.ts'
