import { readFile } from 'node:fs/promises'
import { parse as parseYaml } from 'yaml'
import type { z } from 'zod'
import { normalizeRegistry } from '../oci/index.js'
import { ConfigError } from './config-error.js'
import { applyOverrides, envOverrides, type ConfigOverrides } from './config-overrides.js'
import { configSchema, type Config, type ConfigInput, type MirrorConfig, type RegistryConfig } from './config-schema.js'
import { defaultRegistriesInput } from './registries.js'

export { ConfigError } from './config-error.js'
export { envOverrides, type ConfigOverrides } from './config-overrides.js'

function formatIssue (issue: z.core.$ZodIssue): string {
  const path = issue.path.length > 0 ? issue.path.join('.') : 'config'
  return `${path}: ${issue.message}`
}

/** Validates a raw configuration object (file contents with overrides applied). */
export function buildConfig (raw: unknown, overrides: ConfigOverrides = {}): Config {
  if (raw !== undefined && raw !== null && (typeof raw !== 'object' || Array.isArray(raw))) throw new ConfigError('config: expected a YAML mapping at the top level')
  const merged = applyOverrides((raw ?? {}) as Record<string, unknown>, overrides)
  const parsed = configSchema.safeParse(merged as ConfigInput)
  if (!parsed.success) throw new ConfigError(`invalid configuration: ${parsed.error.issues.map(formatIssue).join('; ')}`)
  const c = parsed.data
  const registries = new Map<string, RegistryConfig>()
  const entries: Array<[string, { endpoint: string, tagTTL?: number, mirrors?: MirrorConfig[] }]> = Object.entries(c.registries ?? defaultRegistriesInput())
  for (const [name, r] of entries) {
    let key: string
    try {
      key = normalizeRegistry(name)
    } catch (err) {
      throw new ConfigError(`registries.${name}: ${(err as Error).message}`)
    }
    const mirrors = (r.mirrors ?? []).map((m) => ({ ...m, url: m.url.replace(/\/+$/, '') }))
    registries.set(key, { endpoint: r.endpoint.replace(/\/+$/, ''), tagTtlMs: r.tagTTL ?? c.tagTTL, mirrors })
  }
  const { registries: _r, tagTTL, shutdownTimeout, firstByteTimeout, stallTimeout, ...rest } = c
  return { ...rest, tagTtlMs: tagTTL, shutdownTimeoutMs: shutdownTimeout, firstByteTimeoutMs: firstByteTimeout, stallTimeoutMs: stallTimeout, registries }
}

/** Loads the YAML file (if any), then environment, then flags; throws ConfigError with one clear line. */
export async function loadConfig (file: string | undefined, overrides: ConfigOverrides, env: NodeJS.ProcessEnv = process.env): Promise<Config> {
  let raw: unknown
  if (file !== undefined) {
    let text: string
    try {
      text = await readFile(file, 'utf8')
    } catch (err) {
      throw new ConfigError(`cannot read config file ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`)
    }
    try {
      raw = parseYaml(text)
    } catch (err) {
      throw new ConfigError(`config file ${file} is not valid YAML: ${(err as Error).message.split('\n')[0]}`)
    }
  }
  const fromEnv = envOverrides(env)
  const combined: ConfigOverrides = { ...fromEnv, ...Object.fromEntries(Object.entries(overrides).filter(([, v]) => v !== undefined && !(Array.isArray(v) && v.length === 0))) }
  const config = buildConfig(raw, combined)
  return file === undefined ? config : { ...config, configFile: file }
}

/** The file's text as a configuration (with no environment or flags): for parts that are re-read while running. */
export function parseConfigText (text: string, name: string): Config {
  let raw: unknown
  try {
    raw = parseYaml(text)
  } catch (err) {
    throw new ConfigError(`${name} is not valid YAML: ${(err as Error).message.split('\n')[0]}`)
  }
  return buildConfig(raw, {})
}
