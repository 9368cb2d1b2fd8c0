import { overrideKey, type OptionDeclaration, type OverrideKey } from './option.js'
import { OPTIONS, type Option } from './options.js'

type Overridable = Extract<Option, { readonly flag: string } | { readonly env: string }>

/** Overrides from flags (already split by commander) or env; undefined or an empty list means "not given". */
export type ConfigOverrides = {
  readonly [D in Overridable as OverrideKey<D>]?: D extends { readonly isList: true } ? readonly string[] : string
}

/** Reads overrides from the environment: scalars as they are, lists comma-separated; empty means unset. */
export function envOverrides (env: NodeJS.ProcessEnv, options: readonly OptionDeclaration[] = OPTIONS): ConfigOverrides {
  const out: Record<string, unknown> = {}
  for (const d of options) {
    const v = d.env === undefined ? undefined : env[d.env]
    if (v === undefined || v === '') continue
    out[overrideKey(d)] = d.isList === true ? v.split(',').map((s) => s.trim()).filter((s) => s !== '') : v
  }
  return out as ConfigOverrides
}

/** Puts overrides onto the file's contents (a copy), at each option's place in the file. */
export function applyOverrides (base: Record<string, unknown>, overrides: ConfigOverrides, options: readonly OptionDeclaration[] = OPTIONS): Record<string, unknown> {
  const given = overrides as Readonly<Record<string, string | readonly string[] | undefined>>
  const out: Record<string, unknown> = { ...base }
  for (const d of options) {
    const value = given[overrideKey(d)]
    if (value === undefined || (typeof value !== 'string' && value.length === 0)) continue
    const dot = d.name.indexOf('.')
    let target = out
    if (dot >= 0) {
      const section = d.name.slice(0, dot)
      target = { ...(out[section] as Record<string, unknown> | undefined) }
      out[section] = target
    }
    const field = d.name.slice(dot + 1)
    const values = typeof value === 'string' ? [value] : value
    target[field] = d.merge !== undefined ? d.merge(target[field], values) : d.isList === true ? [...values] : value
  }
  return out
}
