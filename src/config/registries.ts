import { z } from 'zod'
import { ConfigError } from './config-error.js'
import { duration, endpoint } from './option-types.js'

export const DEFAULT_REGISTRIES: Readonly<Record<string, string>> = {
  'docker.io': 'https://registry-1.docker.io',
  'ghcr.io': 'https://ghcr.io',
  'quay.io': 'https://quay.io',
  'registry.k8s.io': 'https://registry.k8s.io',
  'gcr.io': 'https://gcr.io',
}

/** A mirror tried before the registry's endpoint (a central flotilla, Zot or Distribution proxy), asked with `?ns=`. */
export const mirrorSchema = z.strictObject({
  url: endpoint,
  /** PEM file of the CA that signed the mirror's certificate. */
  ca: z.string().min(1).optional(),
  skipVerify: z.boolean().optional(),
})

export const registrySchema = z.strictObject({
  endpoint,
  tagTTL: duration.optional(),
  mirrors: z.array(mirrorSchema).optional(),
})

/** `registries` in the file: name → endpoint and tag TTL; names are normalized when the config is built. */
export const registriesSchema = z.record(z.string(), registrySchema)

export function defaultRegistriesInput (): Record<string, { endpoint: string }> {
  return Object.fromEntries(Object.entries(DEFAULT_REGISTRIES).map(([k, v]) => [k, { endpoint: v }]))
}

/**
 * Applies `NAME=URL` pairs (`--registry`, `FLOTILLA_REGISTRIES`) onto the file's registries, or onto the
 * defaults when the file has none: a pair adds a registry or replaces an endpoint, keeping its tagTTL.
 */
export function mergeRegistryPairs (current: unknown, pairs: readonly string[]): Record<string, unknown> {
  const regs: Record<string, unknown> = { ...(current as Record<string, unknown> | undefined ?? defaultRegistriesInput()) }
  for (const pair of pairs) {
    const eq = pair.indexOf('=')
    if (eq <= 0) throw new ConfigError(`--registry ${JSON.stringify(pair)}: expected NAME=URL, e.g. docker.io=https://registry-1.docker.io`)
    regs[pair.slice(0, eq)] = { ...(regs[pair.slice(0, eq)] as object | undefined), endpoint: pair.slice(eq + 1) }
  }
  return regs
}
