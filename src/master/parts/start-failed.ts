// Why a master could not start, as its parts report it: one line each, said
// in the log before the log closes (src/master/main.ts turns it into the
// exit code).
import * as Schema from 'effect/Schema'

/** A part could not open what it holds (a log file, a socket, a pidfile…): the message says which and why. */
export class StartFailed extends Schema.TaggedError<StartFailed>()('StartFailed', { message: Schema.String }) {}

/** --preload: the app did not load; preloadApp has logged why. */
export class AppLoadFailed extends Schema.TaggedError<AppLoadFailed>()('AppLoadFailed', {}) {}

/** The one line a thrown error says, as a StartFailed. */
export const startFailed = (err: unknown): StartFailed =>
  new StartFailed({ message: err instanceof Error ? err.message : String(err) })
