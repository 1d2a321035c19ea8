// spec/settings.md is generated from the registry and must not go stale; the
// pieces of the configuration sources that need no process: CORRAL_CMD_ARGS
// word splitting and the config-file key set behind defineConfig's type.
import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { SETTINGS_DOC, expectedSettingsDoc } from '../scripts/settings-doc.ts'
import { splitShellWords } from '../src/config/shell-words.ts'
import { defineConfig, type CommandLineOnly } from '../src/index.ts'
import { CONFIG_KEYS, registry } from '../src/config/registry.ts'

describe('spec/settings.md', () => {
  it('is what `npm run settings-doc` generates from the registry', () => {
    const current = readFileSync(SETTINGS_DOC, 'utf8')
    // On failure: run `npm run settings-doc` and commit spec/settings.md.
    expect(current).toBe(expectedSettingsDoc(current))
  })

  it('documents every setting with its flags, config key, type and default', () => {
    const doc = readFileSync(SETTINGS_DOC, 'utf8')
    for (const s of registry) {
      expect(doc).toContain(`#### ${s.name}\n`)
      for (const flag of s.flags) expect(doc).toContain(`\`${flag}`)
      if (s.env !== undefined) expect(doc).toContain(`\`${s.env}\``)
    }
  })
})

describe('splitShellWords (CORRAL_CMD_ARGS)', () => {
  it.each([
    ['-w 4  --name x', ['-w', '4', '--name', 'x']],
    [`--name 'my app' -b "127.0.0.1:8000"`, ['--name', 'my app', '-b', '127.0.0.1:8000']],
    [`--name "say \\"hi\\" \\$HOME \\n"`, ['--name', 'say "hi" $HOME \\n']],
    [`--name it\\'s`, ['--name', "it's"]],
    [`--name=a' 'b"c d"`, ['--name=a bc d']],
    [`''`, ['']],
    ['\t\n', []],
  ])('%j → %j', (text, words) => {
    expect(splitShellWords(text)).toEqual(words)
  })

  it.each([
    [`--name 'x`, 'unterminated single quote'],
    [`--name "x`, 'unterminated double quote'],
    ['--name x\\', 'ends with a lone backslash'],
  ])('%j is refused: %s', (text, reason) => {
    expect(splitShellWords(text)).toBe(reason)
  })
})

describe('config-file keys', () => {
  it("defineConfig's type leaves out exactly the registry's command-line-only settings", () => {
    const cliOnly: Record<CommandLineOnly, true> = { config: true, noConfig: true, help: true, version: true }
    expect(
      registry
        .filter((s) => s.cliOnly)
        .map((s) => s.name)
        .sort(),
    ).toEqual(Object.keys(cliOnly).sort())
    expect(CONFIG_KEYS).toEqual(registry.filter((s) => !s.cliOnly).map((s) => s.name))
  })

  it('defineConfig returns its argument', () => {
    const config = { workers: 2, bind: ['0.0.0.0:8000'] }
    expect(defineConfig(config)).toBe(config)
  })
})
