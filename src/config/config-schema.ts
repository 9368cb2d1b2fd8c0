import { z } from 'zod'
import type { OptionDeclaration } from './option.js'
import { OPTIONS, type Option } from './options.js'

export { DEFAULT_REGISTRIES, registrySchema } from './registries.js'

// The file schema, derived from OPTIONS. A field with a default gets it through .prefault(), so the default is
// parsed like input (zod 4's .default() skips the transform: a default of "5m" would not become milliseconds).
// A section (`p2p.*`) defaults to {} so its own defaults apply, unless one of its fields is required: then the
// section is optional as a whole and, when given, complete (`tls`).

type FieldSchema<D extends Option> = D extends { readonly default: unknown } ? z.ZodPrefault<D['type']>
  : D extends { readonly isRequired: true } ? D['type'] : z.ZodOptional<D['type']>
type SectionOf<N> = N extends `${infer S}.${string}` ? S : never
type TopShape = { [D in Option as D['name'] extends `${string}.${string}` ? never : D['name']]: FieldSchema<D> }
type SectionShape<S extends string> = { [D in Option as D['name'] extends `${S}.${infer F}` ? F : never]: FieldSchema<D> }
type SectionSchema<S extends string> = [Extract<Option, { readonly name: `${S}.${string}`, readonly isRequired: true }>] extends [never]
  ? z.ZodPrefault<z.ZodObject<SectionShape<S>, z.core.$strict>>
  : z.ZodOptional<z.ZodObject<SectionShape<S>, z.core.$strict>>
type ConfigShape = TopShape & { [S in SectionOf<Option['name']>]: SectionSchema<S> }

function fieldSchema (d: OptionDeclaration): z.ZodType {
  if (d.default !== undefined) return d.type.prefault(d.default)
  return d.isRequired === true ? d.type : d.type.optional()
}

/** Builds the strict file schema from declarations, fields and sections in declaration order. */
export function schemaOf (options: readonly OptionDeclaration[]): z.ZodObject {
  const shape: Record<string, z.ZodType> = {}
  for (const key of new Set(options.map((d) => d.name.split('.')[0] as string))) {
    const fields = options.filter((d) => d.name.startsWith(`${key}.`))
    const own = options.find((d) => d.name === key)
    if (own !== undefined) {
      if (fields.length > 0) throw new TypeError(`option ${key} is also the section of ${fields[0]?.name ?? ''}`)
      shape[key] = fieldSchema(own)
      continue
    }
    const section = z.strictObject(Object.fromEntries(fields.map((d) => [d.name.slice(key.length + 1), fieldSchema(d)])))
    shape[key] = fields.some((d) => d.isRequired === true) ? section.optional() : section.prefault({})
  }
  return z.strictObject(shape)
}

export const configSchema = schemaOf(OPTIONS) as unknown as z.ZodObject<ConfigShape, z.core.$strict>

export type ConfigInput = z.input<typeof configSchema>
export type ParsedConfig = z.output<typeof configSchema>

export interface MirrorConfig {
  readonly url: string
  readonly ca?: string
  readonly skipVerify?: boolean
}

export interface RegistryConfig {
  readonly endpoint: string
  readonly tagTtlMs: number
  /** Tried in order before `endpoint`. */
  readonly mirrors: readonly MirrorConfig[]
}

/** The validated configuration the daemon runs with. */
export interface Config extends Omit<ParsedConfig, 'registries' | 'tagTTL' | 'shutdownTimeout' | 'firstByteTimeout' | 'stallTimeout'> {
  readonly tagTtlMs: number
  readonly shutdownTimeoutMs: number
  readonly firstByteTimeoutMs: number
  readonly stallTimeoutMs: number
  readonly registries: ReadonlyMap<string, RegistryConfig>
  /** The file it was read from, if any (parts of it are re-read while running: the redirector's regions). */
  readonly configFile?: string
}
