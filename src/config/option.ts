import type { z } from 'zod'

/** How an option is documented and overridden; its value type and default are typed in `option()`. */
export interface OptionMeta<Input = unknown> {
  /** The default as written in the file (`5m`, not 300000); without one the option is optional. */
  readonly default?: Input | Readonly<Input>
  /** Required once its section is given, which makes the section optional as a whole (the `tls` pair). */
  readonly isRequired?: true
  /** Environment variable; lists are comma-separated. */
  readonly env?: string
  /** commander flag spec (`-l, --listen <host:port>`); lists are repeatable. */
  readonly flag?: string
  /** The name in `ConfigOverrides`, when it is not the flag's (`--registry` → `registries`). */
  readonly key?: string
  /** Flag and env give several values (repeatable flag, comma-separated env). */
  readonly isList?: true
  /** Puts flag or env values onto the file's value; by default they replace it. */
  readonly merge?: (current: unknown, values: readonly string[]) => unknown
  /** One line for `--help` and the README's configuration table. */
  readonly help: string
}

export interface OptionDeclaration<T extends z.ZodType = z.ZodType> extends OptionMeta {
  /** Where the option sits in the file: `listen`, or `p2p.ownerFanout` in a section (one level deep). */
  readonly name: string
  /** Validates and converts a value from the file, env or a flag (without the default). */
  readonly type: T
}

/** Declares an option; `default` is checked against what `type` accepts. */
export function option<const N extends string, T extends z.ZodType, const M extends OptionMeta<z.input<T>>> (name: N, type: T, meta: M): { readonly name: N, readonly type: T } & M {
  return { name, type, ...meta }
}

type CamelCase<S extends string> = S extends `${infer H}-${infer T}` ? `${H}${Capitalize<CamelCase<T>>}` : S
type LongFlag<F extends string> = F extends `${string}--${infer L}` ? (L extends `${infer N} ${string}` ? N : L) : never
type DottedCamel<S extends string> = S extends `${infer H}.${infer T}` ? `${H}${Capitalize<DottedCamel<T>>}` : S

/** The name of an option in `ConfigOverrides`: `key`, else the flag's (`--p2p-listen` → `p2pListen`), else the path's. */
export type OverrideKey<D> = D extends { readonly key: infer K extends string } ? K
  : D extends { readonly flag: infer F extends string } ? CamelCase<LongFlag<F>>
    : D extends { readonly name: infer N extends string } ? DottedCamel<N> : never

export function overrideKey (d: OptionDeclaration): string {
  if (d.key !== undefined) return d.key
  const long = d.flag === undefined ? undefined : /--([\w-]+)/.exec(d.flag)?.[1]
  if (long !== undefined) return long.replace(/-(\w)/g, (_, c: string) => c.toUpperCase())
  return d.name.replace(/\.(\w)/g, (_, c: string) => c.toUpperCase())
}

/** The default as the docs and `--help` show it: `5m`, `[]`, or undefined when there is none. */
export function formatDefault (d: OptionDeclaration): string | undefined {
  if (d.default === undefined) return undefined
  return typeof d.default === 'string' ? d.default : JSON.stringify(d.default)
}
