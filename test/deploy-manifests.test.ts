// The example deploy files (deploy/) checked against corral itself: every
// corral command line in them parses with corral's own parser, and what the
// orchestrator is told (ports, probe paths, grace periods, the reload
// command, the socket path) agrees with what that command line makes corral
// do. The Kubernetes manifests are parsed as YAML and their required fields
// and cross-references checked (no schema validator is installed: see
// spec/deploy.md); the unit files go through `systemd-analyze verify`; the
// Dockerfile's HEALTHCHECK runs against a stand-in /healthz. The nginx
// examples are run for real by test/proxy-nginx.test.ts.
import { spawn, spawnSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { parseAllDocuments } from 'yaml'
import { parseArgs } from '../src/config/command-line.ts'
import { findSetting, type Settings } from '../src/config/registry.ts'
import { parseBind, type Bind } from '../src/net/binds.ts'
import { splitShellWords } from '../src/config/shell-words.ts'
import { BIN, ROOT } from './helpers/corral.ts'

const DEPLOY = `${ROOT}deploy/`
const read = (path: string) => readFileSync(`${DEPLOY}${path}`, 'utf8')
const tmp = mkdtempSync(join(tmpdir(), 'corral-manifests-'))
afterAll(() => rmSync(tmp, { recursive: true, force: true }))

interface CorralLine {
  settings: Settings
  app: string
  binds: Bind[]
  /** --metrics-bind's address: /healthz, /readyz, /metrics. */
  metrics: Bind | undefined
}

/**
 * Parses corral's arguments as corral does. --metrics-bind comes with the
 * metrics listener (issue 10): until the registry has it, it is taken out
 * and checked as an address, and the rest must parse.
 */
function corralLine(argv: readonly string[], env: NodeJS.ProcessEnv = {}): CorralLine {
  const at = argv.indexOf('--metrics-bind')
  const metrics = at < 0 ? undefined : parseBind(argv[at + 1] ?? '')
  const known = findSetting('metricsBind') || at < 0 ? argv : [...argv.slice(0, at), ...argv.slice(at + 2)]
  const parsed = parseArgs(known, env)
  if (!parsed.ok) throw new Error(`corral would refuse ${argv.join(' ')}: ${parsed.errors.join('; ')}`)
  const settings = parsed.settings
  return { settings, app: parsed.app!, binds: settings.bind.map(parseBind), metrics }
}

const tcp = (b: Bind | undefined) => {
  if (b?.kind !== 'tcp') throw new Error(`expected a TCP address, got ${JSON.stringify(b)}`)
  return b
}

// ---------------------------------------------------------------------------
// Kubernetes

interface Probe {
  httpGet?: { path?: string; port?: string | number }
}
interface Container {
  name: string
  image?: string
  args?: string[]
  env?: { name: string; value?: string; valueFrom?: { resourceFieldRef?: Record<string, string> } }[]
  ports?: { name?: string; containerPort: number }[]
  resources?: { limits?: Record<string, string>; requests?: Record<string, string> }
  readinessProbe?: Probe
  livenessProbe?: Probe
  startupProbe?: Probe
  lifecycle?: { preStop?: { exec?: { command?: string[] }; sleep?: { seconds: number } } }
  securityContext?: Record<string, unknown>
}
interface Manifest {
  apiVersion: string
  kind: string
  metadata: { name: string; labels?: Record<string, string> }
  // biome-ignore lint/suspicious/noExplicitAny: each kind's spec is checked field by field below
  spec: any
}

function kubernetesManifests(): Manifest[] {
  const dir = `${DEPLOY}kubernetes/`
  return readdirSync(dir)
    .filter((f) => f.endsWith('.yaml'))
    .flatMap((f) =>
      parseAllDocuments(readFileSync(`${dir}${f}`, 'utf8')).map((doc) => {
        expect(doc.errors, f).toEqual([])
        expect(doc.warnings, f).toEqual([])
        return doc.toJS() as Manifest
      }),
    )
}

const API_VERSIONS: Record<string, string> = {
  Deployment: 'apps/v1',
  Service: 'v1',
  PodDisruptionBudget: 'policy/v1',
  HorizontalPodAutoscaler: 'autoscaling/v2',
}

/** Every label the selector asks for is on the pods. */
const selects = (selector: Record<string, string> | undefined, labels: Record<string, string> | undefined) =>
  selector !== undefined &&
  Object.keys(selector).length > 0 &&
  Object.entries(selector).every(([k, v]) => labels?.[k] === v)

describe('Kubernetes manifests (deploy/kubernetes/)', () => {
  const manifests = kubernetesManifests()
  const one = (kind: string) => {
    const found = manifests.filter((m) => m.kind === kind)
    expect(found, kind).toHaveLength(1)
    return found[0]!
  }
  const deployment = one('Deployment')
  const pod = deployment.spec.template.spec
  const podLabels = deployment.spec.template.metadata.labels as Record<string, string>
  const containers = pod.containers as Container[]
  const app = containers.find((c) => c.name === 'app')!
  const portNamed = (name: string | number | undefined) =>
    typeof name === 'number' ? name : app.ports?.find((p) => p.name === name)?.containerPort
  const line = corralLine(app.args ?? [], { WEB_CONCURRENCY: '2' })

  it('has the kinds it should, each with its apiVersion, a name, and no YAML problems', () => {
    expect(manifests.map((m) => m.kind).sort()).toEqual(Object.keys(API_VERSIONS).sort())
    for (const m of manifests) {
      expect(m.apiVersion, m.kind).toBe(API_VERSIONS[m.kind])
      expect(m.metadata.name, m.kind).toMatch(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/)
      expect(m.spec, m.kind).toBeTypeOf('object')
    }
  })

  it("the Deployment's selector, the Service, the PodDisruptionBudget and the HPA all find its pods", () => {
    expect(selects(deployment.spec.selector.matchLabels, podLabels)).toBe(true)
    expect(selects(one('Service').spec.selector, podLabels)).toBe(true)
    expect(selects(one('PodDisruptionBudget').spec.selector.matchLabels, podLabels)).toBe(true)
    expect(one('HorizontalPodAutoscaler').spec.scaleTargetRef).toEqual({
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      name: deployment.metadata.name,
    })
  })

  it("corral's command line parses, and listens where the pod's ports, probes and Service say", () => {
    // An image pinned by tag (a rollout changes it), not :latest.
    expect(app.image).toMatch(/^[\w.-]+(\/[\w.-]+)+:(?!latest$)[\w.-]+$/)
    // Not loopback: the kubelet and the Service come from outside the pod.
    expect(tcp(line.binds[0]).host).toBe('0.0.0.0')
    expect(line.binds).toHaveLength(1)
    expect(portNamed('http')).toBe(tcp(line.binds[0]).port)
    expect(tcp(line.metrics).host).toBe('0.0.0.0')
    expect(portNamed('metrics')).toBe(tcp(line.metrics).port)

    expect(app.readinessProbe?.httpGet).toEqual({ path: '/readyz', port: 'metrics' })
    expect(app.livenessProbe?.httpGet).toEqual({ path: '/healthz', port: 'metrics' })
    expect(app.startupProbe?.httpGet).toEqual({ path: '/healthz', port: 'metrics' })

    const service = one('Service').spec.ports as { port: number; targetPort: string | number }[]
    expect(service.map((p) => portNamed(p.targetPort))).toEqual([tcp(line.binds[0]).port])
  })

  it('gives the preStop pause and the graceful stop time before the kubelet kills: terminationGracePeriodSeconds', () => {
    const preStop = app.lifecycle?.preStop
    const [sleep, seconds] = preStop?.exec?.command ?? []
    expect(sleep).toBe('sleep')
    const pause = Number(seconds)
    expect(pause).toBeGreaterThan(0)
    expect(pod.terminationGracePeriodSeconds).toBeGreaterThan(pause + line.settings.gracefulTimeout)
  })

  it('sets $WEB_CONCURRENCY from the CPU limit (downward API), which corral takes as its worker count', () => {
    const concurrency = app.env?.find((e) => e.name === 'WEB_CONCURRENCY')
    expect(concurrency?.valueFrom?.resourceFieldRef).toEqual({
      containerName: 'app',
      resource: 'limits.cpu',
      divisor: '1',
    })
    // The limit the downward API divides into WEB_CONCURRENCY: whole cores.
    expect(Number(app.resources?.limits?.cpu)).toBeGreaterThanOrEqual(1)
    // No -w on the command line: it would win over the variable.
    expect(app.args).not.toContain('-w')
    expect(app.args).not.toContain('--workers')
    expect(line.settings.workers).toBe(2)
  })

  it('updates by rolling, never below the replicas, as a non-root user', () => {
    expect(deployment.spec.strategy).toEqual({
      type: 'RollingUpdate',
      rollingUpdate: { maxSurge: 1, maxUnavailable: 0 },
    })
    expect(pod.securityContext.runAsNonRoot).toBe(true)
    expect(pod.securityContext.runAsUser).toBeGreaterThan(0)
    expect(app.securityContext?.allowPrivilegeEscalation).toBe(false)
  })
})

// ---------------------------------------------------------------------------
// Dockerfile

interface Instruction {
  keyword: string
  rest: string
}

/** Instructions, with continuation lines joined and comments dropped. */
function dockerfile(text: string): Instruction[] {
  return text
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'))
    .map((l) => {
      const [keyword = '', ...rest] = l.split(/\s+/)
      return { keyword: keyword.toUpperCase(), rest: rest.join(' ') }
    })
}

/** An exec-form argument list: ["a", "b"]. */
const execForm = (text: string) => JSON.parse(text) as string[]

describe('Dockerfile (deploy/docker/)', () => {
  const instructions = dockerfile(read('docker/Dockerfile'))
  const all = (keyword: string) => instructions.filter((i) => i.keyword === keyword)
  const lastStage = instructions.slice(instructions.map((i) => i.keyword).lastIndexOf('FROM'))
  const entrypoint = execForm(all('ENTRYPOINT').at(-1)!.rest)
  const cmd = execForm(all('CMD').at(-1)!.rest)
  const line = corralLine(cmd, { WEB_CONCURRENCY: '2' })
  const healthcheck = all('HEALTHCHECK').at(-1)!.rest
  const probe = execForm(healthcheck.slice(healthcheck.indexOf('CMD ') + 4))

  it('builds in stages from node:24-slim and keeps production dependencies only', () => {
    const froms = all('FROM').map((i) => i.rest.split(' ')[0])
    expect(froms.length).toBeGreaterThanOrEqual(2)
    expect(new Set(froms)).toEqual(new Set(['node:24-slim']))
    expect(instructions.some((i) => i.keyword === 'RUN' && /npm (prune|ci)\b.*--omit=dev/.test(i.rest))).toBe(true)
    expect(lastStage.some((i) => i.keyword === 'COPY' && i.rest.startsWith('--from=build'))).toBe(true)
    expect(read('docker/.dockerignore').split('\n')).toContain('node_modules')
  })

  it('runs as a non-root user, with tini as PID 1 in front of corral', () => {
    const user = lastStage.filter((i) => i.keyword === 'USER').at(-1)?.rest
    // A user name or a uid, and not root's.
    expect(user).toMatch(/^([a-z_][a-z0-9_-]*|\d+)$/)
    expect(['root', '0']).not.toContain(user)
    expect(entrypoint.slice(0, 2)).toEqual(['/usr/bin/tini', '--'])
    expect(lastStage.some((i) => i.keyword === 'RUN' && /apt-get install .*\btini\b/.test(i.rest))).toBe(true)
    expect(entrypoint.slice(2)).toEqual(['node', 'node_modules/corral/bin/corral.js'])
  })

  it('listens on every interface, and its HEALTHCHECK asks /healthz on the --metrics-bind port', () => {
    expect(tcp(line.binds[0]).host).toBe('0.0.0.0')
    const exposed = all('EXPOSE').flatMap((i) => i.rest.split(' ').map(Number))
    expect(exposed).toEqual(expect.arrayContaining([tcp(line.binds[0]).port, tcp(line.metrics).port]))
    expect(probe[0]).toBe('node')
    expect(probe.join(' ')).toContain(`http://127.0.0.1:${tcp(line.metrics).port}/healthz`)
  })

  it('its HEALTHCHECK command exits 0 on a 200 from /healthz, 1 on a 503 or nothing listening', async () => {
    let status = 200
    const server = createServer((req, res) => {
      res.statusCode = req.url === '/healthz' ? status : 404
      res.end()
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const port = (server.address() as { port: number }).port
    const script = probe[probe.length - 1]!.replace(`:${tcp(line.metrics).port}/`, `:${port}/`)
    // `node` in the image: here, the Node the tests run on.
    const run = () =>
      new Promise<number | null>((resolve) =>
        spawn(process.execPath, [...probe.slice(1, -1), script], { stdio: 'ignore' }).on('exit', resolve),
      )
    try {
      expect(await run()).toBe(0)
      status = 503
      expect(await run()).toBe(1)
    } finally {
      await new Promise((resolve) => server.close(resolve))
    }
    expect(await run()).toBe(1)
  })
})

// ---------------------------------------------------------------------------
// systemd units

type Unit = Record<string, Record<string, string[]>>

/** An INI-style unit file: section → key → values (a key may repeat). */
function unitFile(text: string): Unit {
  const unit: Unit = {}
  let section = ''
  for (const raw of text.split('\n')) {
    const l = raw.trim()
    if (l === '' || l.startsWith('#') || l.startsWith(';')) continue
    const header = /^\[(.+)\]$/.exec(l)
    if (header) {
      section = header[1]!
      unit[section] ??= {}
      continue
    }
    const eq = l.indexOf('=')
    const key = l.slice(0, eq)
    const fields = unit[section]!
    fields[key] = [...(fields[key] ?? []), l.slice(eq + 1)]
  }
  return unit
}

const words = (text: string) => {
  const w = splitShellWords(text)
  if (typeof w === 'string') throw new Error(w)
  return w
}

/** systemd time spans as these files write them: seconds, or with s/min. */
const seconds = (span: string) => {
  const m = /^(\d+)\s*(s|sec|min|m)?$/.exec(span.trim())
  if (!m) throw new Error(`not a time span this test reads: ${span}`)
  return Number(m[1]) * (m[2] === 'min' || m[2] === 'm' ? 60 : 1)
}

describe('systemd units (deploy/systemd/)', () => {
  const service = unitFile(read('systemd/corral.service'))
  const socket = unitFile(read('systemd/corral.socket'))
  const s = service.Service!
  const [corral, ...args] = words(s.ExecStart![0]!)
  const line = corralLine(args)

  it('is Type=notify with NotifyAccess=all, so a new master after an upgrade may name itself (MAINPID=)', () => {
    expect(s.Type).toEqual(['notify'])
    expect(s.NotifyAccess).toEqual(['all'])
    expect(corral).toMatch(/\/corral$/)
  })

  it('reloads with corral upgrade on the pidfile ExecStart writes', () => {
    expect(line.settings.pid).toMatch(/^\/.+\.pid$/)
    expect(s.ExecReload?.map(words)).toEqual([[corral, 'upgrade', '--pid', line.settings.pid]])
    // The pidfile's directory is the service's own.
    expect(line.settings.pid).toMatch(new RegExp(`^/run/${s.RuntimeDirectory?.[0]}/`))
  })

  it('stops by TERM to the master alone, with more time than its graceful stop takes', () => {
    expect(s.KillMode).toEqual(['mixed'])
    expect(seconds(s.TimeoutStopSec![0]!)).toBeGreaterThan(line.settings.gracefulTimeout)
    // Settings that cannot start will not start on a retry: 2 (usage) and 4 (the app cannot load).
    expect(s.RestartPreventExitStatus?.[0]?.split(' ')).toEqual(expect.arrayContaining(['2', '4']))
  })

  it("serves corral.socket's socket, and nginx's example proxies to it with a shorter keep-alive than corral's", () => {
    expect(service.Unit?.Requires).toEqual(['corral.socket'])
    const listen = socket.Socket?.ListenStream
    expect(listen).toHaveLength(1)
    const nginx = readFileSync(`${DEPLOY}nginx/corral.conf`, 'utf8')
    expect(nginx).toContain(`server unix:${listen![0]};`)
    const keepalive = /keepalive_timeout (\d+)s;/.exec(nginx)
    expect(Number(keepalive?.[1])).toBeLessThan(line.settings.keepAlive)
    expect(readFileSync(`${DEPLOY}nginx/corral-stream.conf`, 'utf8')).toContain(`server unix:${listen![0]};`)
  })

  const hasAnalyze = spawnSync('systemd-analyze', ['--version'], { timeout: 5000 }).status === 0
  it.skipIf(!hasAnalyze)('passes systemd-analyze verify (with its paths pointed at this checkout)', () => {
    const dir = join(tmp, 'units')
    mkdirSync(dir, { recursive: true })
    // Only what must exist on this machine changes: the program and the working directory.
    writeFileSync(
      join(dir, 'corral.service'),
      read('systemd/corral.service').replaceAll(corral!, BIN).replaceAll('/srv/my-app', ROOT.replace(/\/$/, '')),
    )
    writeFileSync(join(dir, 'corral.socket'), read('systemd/corral.socket'))
    const result = spawnSync('systemd-analyze', ['verify', join(dir, 'corral.service'), join(dir, 'corral.socket')], {
      encoding: 'utf8',
      timeout: 20_000,
    })
    expect(result.stderr).toBe('')
    expect(result.status).toBe(0)
  })
})
