// What a corral process's exit code means. Defined once, in
// machines/exit-codes.ts, where the charts (which may import nothing from
// src/) decide on them too; the shells import them from here.
export { APP_LOAD_ERROR, BOOT_ERROR, RUNTIME_ERROR, USAGE_ERROR } from '../../machines/exit-codes.ts'
