// The server hooks' entries in the settings registry (src/config/settings.ts): one
// per hook, type 'hook', no flags, set only in a config file. Kept apart from
// src/hooks/hooks.ts, which workers import and which must not load effect.
import * as Schema from 'effect/Schema'
import { HOOK_DOCS, HOOK_NAMES, type HookName, type Hooks } from '../hooks/hooks.ts'
import type { SettingSpec } from './settings.ts'

const expected = { expected: 'a function' }

function hookSchema<N extends HookName>() {
  return Schema.UndefinedOr(Schema.declare((u: unknown): u is Hooks[N] => typeof u === 'function', expected)).annotate(
    expected,
  )
}
type HookSchema<N extends HookName> = ReturnType<typeof hookSchema<N>>

/** One entry per hook, each with its own name and function type (so defineConfig types each hook's arguments). */
// Its default is undefined, never a function: a function default means a computed one.
type HookSetting = {
  [N in HookName]: Omit<SettingSpec<N, HookSchema<N>>, 'default'> & { readonly default: undefined }
}[HookName]

/** Spread into the registry: `...hookSettings`. */
export const hookSettings = HOOK_NAMES.map(
  (name): SettingSpec => ({
    name,
    flags: [],
    section: 'Server hooks',
    type: 'hook',
    default: undefined,
    defaultDoc: 'none',
    schema: hookSchema(),
    doc: `${HOOK_DOCS[name]} See spec/hooks.md.`,
  }),
) as unknown as readonly HookSetting[]
