// piscina's task for bench/dirty.ts: the same echo as bench/servers/dirty-target.ts.
export default (value) => value
