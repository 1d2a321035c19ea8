// The schemas of setting values, which the registry's entries
// (src/config/server-settings.ts) name. Each carries an `expected` phrase: a
// failure reads "expected <phrase>, got <input>" (src/config/resolve.ts).
// A value a module checks itself (an address, a umask, an allow list) is
// checked by that module's own function, so the rule lives beside its use.
import * as Schema from 'effect/Schema'
import { LOG_LEVELS } from '../logging/log.ts'
import { parseAccessLogFormat } from '../logging/access-log-format.ts'
import { groupProblem, userProblem } from '../process/privileges.ts'
import { envEntryProblem, umaskProblem } from '../process/process-settings.ts'
import { httpProtocolsProblem } from '../http/tls.ts'
import { parseDirtyApp } from '../../machines/dirty-pool.ts'
import { bindProblem } from '../net/binds.ts'
import { dogstatsdTagsProblem, statsdAddressProblem, statsdPrefixProblem } from '../net/statsd.ts'
import {
  allowListProblem,
  secureSchemeHeadersProblem,
  type AllowListValue,
  type SecureSchemeHeadersValue,
} from '../http/forwarded.ts'

const expecting = (phrase: string) => ({ expected: phrase })

export function intAtLeast(min: number, phrase: string) {
  const e = expecting(phrase)
  return Schema.Number.annotate(e).check(Schema.isInt(e), Schema.isGreaterThanOrEqualTo(min, e))
}

export const PositiveInt = intAtLeast(1, 'a positive integer')
export const Seconds = intAtLeast(0, 'a whole number of seconds (0 or more)')
export const Flag = Schema.Boolean.annotate(expecting('true or false'))
export const OptionalPath = Schema.UndefinedOr(
  Schema.String.check(Schema.isNonEmpty(expecting('a file path'))),
).annotate(expecting('a file path'))
export const OptionalString = Schema.UndefinedOr(Schema.String).annotate(expecting('a string'))

// --bind. Settings keep addresses as the strings the user wrote (what
// --print-config shows back); the listener code calls parseBind, which cannot
// fail on them (src/net/binds.ts).
const Address = Schema.String.annotate(expecting('an address')).check(Schema.makeFilter(bindProblem))
export const Addresses = Schema.Array(Address)
  .annotate(expecting('a list of addresses'))
  .check(Schema.isMinLength(1, expecting('at least one address')))
/** --metrics-bind: one address, or none. */
export const OptionalAddress = Schema.UndefinedOr(Address).annotate(expecting('an address'))

// --statsd-host, --statsd-prefix, --dogstatsd-tags (src/net/statsd.ts).
export const OptionalStatsdAddress = Schema.UndefinedOr(
  Schema.String.check(Schema.makeFilter(statsdAddressProblem)),
).annotate(expecting('HOST:PORT'))
export const StatsdPrefix = Schema.String.annotate(expecting('a StatsD name prefix')).check(
  Schema.makeFilter(statsdPrefixProblem),
)
export const DogstatsdTags = Schema.String.annotate(expecting('comma-separated tags')).check(
  Schema.makeFilter(dogstatsdTagsProblem),
)

/** --inspector: PORT, HOST:PORT or [IPV6]:PORT (src/master/inspector.ts). */
export const OptionalInspectorAddress = Schema.UndefinedOr(
  Schema.String.check(
    Schema.makeFilter((v: string) =>
      /^(?:(?:\[[0-9a-fA-F:.]+\]|[^:[\]\s]+):)?\d{1,5}$/.test(v) && Number(v.slice(v.lastIndexOf(':') + 1)) <= 65535
        ? undefined
        : `expected PORT or HOST:PORT, got ${JSON.stringify(v)}`,
    ),
  ),
).annotate(expecting('PORT or HOST:PORT'))

// --control-socket, --control-socket-mode (src/master/control-socket.ts).
export const SocketPath = Schema.String.check(Schema.isNonEmpty(expecting('a file path'))).annotate(
  expecting('a file path'),
)
export const FileMode = Schema.String.annotate(expecting('an octal file mode such as 0600')).check(
  Schema.makeFilter((v: string) =>
    /^0?[0-7]{3}$/.test(v) ? undefined : `expected an octal file mode such as 0600, got ${JSON.stringify(v)}`,
  ),
)

// --cert-reqs, numbered as gunicorn numbers it.
export const CertReqs = intAtLeast(0, '0, 1 or 2').check(Schema.isLessThanOrEqualTo(2, expecting('0, 1 or 2')))

// --http-protocols (src/http/tls.ts): h1 and/or h2, comma-separated.
export const HttpProtocols = Schema.String.annotate(expecting('h1, h2 or both, comma-separated')).check(
  Schema.makeFilter((v: string) => httpProtocolsProblem(v)),
)

// --forwarded-allow-ips, --proxy-allow-from, --secure-scheme-headers (src/http/forwarded.ts).
export const AllowList = Schema.Union([Schema.String, Schema.Array(Schema.String)])
  .annotate(expecting('IP addresses or networks, comma-separated, or *'))
  .check(Schema.makeFilter((v: AllowListValue) => allowListProblem(v)))
export const SecureSchemeHeaders = Schema.Union([Schema.String, Schema.Record(Schema.String, Schema.String)])
  .annotate(expecting('NAME=VALUE pairs, comma-separated'))
  .check(Schema.makeFilter((v: SecureSchemeHeadersValue) => secureSchemeHeadersProblem(v)))

// --log-level, --error-logfile, --access-logformat (src/logging/).
export const LogLevel = Schema.Literals(LOG_LEVELS).annotate(expecting(`one of ${LOG_LEVELS.join(', ')}`))
export const ErrorLogPath = Schema.String.check(Schema.isNonEmpty(expecting('a file path or -'))).annotate(
  expecting('a file path or -'),
)
export const AccessLogFormat = Schema.String.annotate(expecting('an access log format')).check(
  Schema.makeFilter((s: string) => {
    const parts = parseAccessLogFormat(s)
    return typeof parts === 'string' ? parts : undefined
  }),
)

// --upgrade: what the old master does once the new one is ready.
export const UPGRADE_MODES = ['manual', 'auto'] as const
export const UpgradeMode = Schema.Literals(UPGRADE_MODES).annotate(expecting('manual or auto'))

// -u/--user, -g/--group, -m/--umask, -e/--env (src/process/privileges.ts, src/process/process-settings.ts).
const idOrName = (phrase: string, problem: (v: string | number) => string | undefined) =>
  Schema.UndefinedOr(
    Schema.Union([Schema.String, Schema.Number])
      .annotate(expecting(phrase))
      .check(Schema.makeFilter((v: string | number) => problem(v))),
  ).annotate(expecting(phrase))
export const User = idOrName('a user name or a uid', userProblem)
export const Group = idOrName('a group name or a gid', groupProblem)
export const Umask = Schema.UndefinedOr(
  Schema.Union([Schema.String, Schema.Number])
    .annotate(expecting('an octal mask such as 022'))
    .check(Schema.makeFilter((v: string | number) => umaskProblem(v))),
).annotate(expecting('an octal mask such as 022'))
export const EnvEntries = Schema.Array(
  Schema.String.annotate(expecting('KEY=VALUE')).check(Schema.makeFilter((v: string) => envEntryProblem(v))),
).annotate(expecting('a list of KEY=VALUE strings'))

// --reload-extra-file.
export const PathsOrGlobs = Schema.Array(
  Schema.String.check(Schema.isNonEmpty(expecting('a file path or glob'))),
).annotate(expecting('a list of file paths or globs'))

// --dirty-app (spec/dirty.md).
export const DirtyApps = Schema.Array(
  Schema.String.annotate(expecting('NAME=MODULE[:EXPORT][:N]')).check(
    Schema.makeFilter((v: string) => {
      const app = parseDirtyApp(v)
      return typeof app === 'string' ? app : undefined
    }),
  ),
).annotate(expecting('a list of NAME=MODULE[:EXPORT][:N] strings'))
