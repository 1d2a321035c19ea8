// What a corral process's exit code means: the one definition. It lives in
// machines/ because the charts decide on these codes (a worker exits with
// BOOT_ERROR or APP_LOAD_ERROR, and the master halts with the same code) and
// machines/ may import nothing from src/; the shells import them through
// src/protocol/exit-codes.ts.

/** Stopped as asked. */
export const OK = 0
/** The master could not start (a listener, the pidfile, onStarting), or a command failed. */
export const RUNTIME_ERROR = 1
/** Bad command line or settings; nothing was started. */
export const USAGE_ERROR = 2
/** A worker could not boot: take up the listeners, drop privileges. The master halts with it when nothing serves. */
export const BOOT_ERROR = 3
/** The app could not be loaded (in a worker, by --preload, by --check-config). */
export const APP_LOAD_ERROR = 4
