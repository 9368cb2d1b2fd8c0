import { readFile } from 'node:fs/promises'
import { parse as parseYaml } from 'yaml'
import type { z } from 'zod'
import { normalizeRegistry } from '../oci/index.js'
import { configSchema, DEFAULT_REGISTRIES, type Config, type ConfigInput, type RegistryConfig } from './config-schema.js'

export class ConfigError extends Error {
  override readonly name = 'ConfigError'
  readonly code = 'ERR_CONFIG'
}

/** Overrides from flags (already split by commander); undefined means "not given". */
export interface ConfigOverrides {
  readonly listen?: string
  readonly dataDir?: string
  readonly defaultRegistry?: string
  readonly logLevel?: string
  readonly credentialsFile?: string
  /** `NAME=URL` pairs. */
  readonly registries?: readonly string[]
  readonly tlsCert?: string
  readonly tlsKey?: string
  readonly containerdSocket?: string
  readonly containerdNamespace?: string
  readonly containerdContentDir?: string
  readonly p2pListen?: string
  readonly bootstrap?: readonly string[]
  readonly clusterKeyFile?: string
  readonly zone?: string
  readonly peerAddress?: string
  readonly ownerFanout?: string
  readonly metricsListen?: string
  readonly firstByteTimeout?: string
  readonly stallTimeout?: string
}

const ENV: ReadonlyArray<[string, keyof ConfigOverrides]> = [
  ['FLOTILLA_LISTEN', 'listen'], ['FLOTILLA_DATA_DIR', 'dataDir'], ['FLOTILLA_DEFAULT_REGISTRY', 'defaultRegistry'],
  ['FLOTILLA_LOG_LEVEL', 'logLevel'], ['FLOTILLA_CREDENTIALS_FILE', 'credentialsFile'],
  ['FLOTILLA_CONTAINERD_SOCKET', 'containerdSocket'], ['FLOTILLA_CONTAINERD_NAMESPACE', 'containerdNamespace'],
  ['FLOTILLA_CONTAINERD_CONTENT_DIR', 'containerdContentDir'], ['FLOTILLA_P2P_LISTEN', 'p2pListen'],
  ['FLOTILLA_CLUSTER_KEY_FILE', 'clusterKeyFile'], ['FLOTILLA_ZONE', 'zone'], ['FLOTILLA_PEER_ADDRESS', 'peerAddress'],
  ['FLOTILLA_OWNER_FANOUT', 'ownerFanout'], ['FLOTILLA_METRICS_LISTEN', 'metricsListen'],
  ['FLOTILLA_FIRST_BYTE_TIMEOUT', 'firstByteTimeout'], ['FLOTILLA_STALL_TIMEOUT', 'stallTimeout'],
]
const ENV_LISTS: ReadonlyArray<[string, 'registries' | 'bootstrap']> = [['FLOTILLA_REGISTRIES', 'registries'], ['FLOTILLA_BOOTSTRAP', 'bootstrap']]

/** Reads overrides from the environment: scalars as they are, lists comma-separated. */
export function envOverrides (env: NodeJS.ProcessEnv): ConfigOverrides {
  const out: Record<string, unknown> = {}
  for (const [name, key] of ENV) if (env[name] !== undefined && env[name] !== '') out[key] = env[name]
  for (const [name, key] of ENV_LISTS) {
    const v = env[name]
    if (v !== undefined && v !== '') out[key] = v.split(',').map((s) => s.trim()).filter((s) => s !== '')
  }
  return out as ConfigOverrides
}

function applyOverrides (base: Record<string, unknown>, o: ConfigOverrides): Record<string, unknown> {
  const c: Record<string, unknown> = { ...base }
  const sub = (key: string): Record<string, unknown> => {
    const v = { ...(c[key] as Record<string, unknown> | undefined) }
    c[key] = v
    return v
  }
  if (o.listen !== undefined) c.listen = o.listen
  if (o.dataDir !== undefined) c.dataDir = o.dataDir
  if (o.defaultRegistry !== undefined) c.defaultRegistry = o.defaultRegistry
  if (o.logLevel !== undefined) c.logLevel = o.logLevel
  if (o.credentialsFile !== undefined) c.credentialsFile = o.credentialsFile
  if (o.metricsListen !== undefined) c.metricsListen = o.metricsListen
  if (o.firstByteTimeout !== undefined) c.firstByteTimeout = o.firstByteTimeout
  if (o.stallTimeout !== undefined) c.stallTimeout = o.stallTimeout
  if (o.tlsCert !== undefined || o.tlsKey !== undefined) c.tls = { ...(c.tls as object | undefined), ...(o.tlsCert === undefined ? {} : { cert: o.tlsCert }), ...(o.tlsKey === undefined ? {} : { key: o.tlsKey }) }
  if (o.containerdSocket !== undefined) sub('containerd').socket = o.containerdSocket
  if (o.containerdNamespace !== undefined) sub('containerd').namespace = o.containerdNamespace
  if (o.containerdContentDir !== undefined) sub('containerd').contentDir = o.containerdContentDir
  if (o.p2pListen !== undefined) sub('p2p').listen = o.p2pListen
  if (o.bootstrap !== undefined && o.bootstrap.length > 0) sub('p2p').bootstrap = [...o.bootstrap]
  if (o.clusterKeyFile !== undefined) sub('p2p').clusterKeyFile = o.clusterKeyFile
  if (o.zone !== undefined) sub('p2p').zone = o.zone
  if (o.peerAddress !== undefined) sub('p2p').peerAddress = o.peerAddress
  if (o.ownerFanout !== undefined) sub('p2p').ownerFanout = o.ownerFanout
  if (o.registries !== undefined && o.registries.length > 0) {
    const regs: Record<string, unknown> = { ...(c.registries as Record<string, unknown> | undefined ?? defaultRegistriesInput()) }
    for (const pair of o.registries) {
      const eq = pair.indexOf('=')
      if (eq <= 0) throw new ConfigError(`--registry ${JSON.stringify(pair)}: expected NAME=URL, e.g. docker.io=https://registry-1.docker.io`)
      regs[pair.slice(0, eq)] = { ...(regs[pair.slice(0, eq)] as object | undefined), endpoint: pair.slice(eq + 1) }
    }
    c.registries = regs
  }
  return c
}

function defaultRegistriesInput (): Record<string, { endpoint: string }> {
  return Object.fromEntries(Object.entries(DEFAULT_REGISTRIES).map(([k, v]) => [k, { endpoint: v }]))
}

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
  const entries: Array<[string, { endpoint: string, tagTTL?: number }]> = Object.entries(c.registries ?? defaultRegistriesInput())
  for (const [name, r] of entries) {
    let key: string
    try {
      key = normalizeRegistry(name)
    } catch (err) {
      throw new ConfigError(`registries.${name}: ${(err as Error).message}`)
    }
    registries.set(key, { endpoint: r.endpoint.replace(/\/+$/, ''), tagTtlMs: r.tagTTL ?? c.tagTTL })
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
  return buildConfig(raw, combined)
}
