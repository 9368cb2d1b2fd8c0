import { z } from 'zod'
import { normalizeRegistry } from '../oci/index.js'
import { parseDuration } from './duration.js'

// Defaults go through .prefault() so they are parsed like input (seconds → ms); zod 4's .default() skips the transform.
const duration = z.union([z.string(), z.number()]).transform((v, ctx) => {
  try {
    return parseDuration(v)
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: (err as Error).message })
    return z.NEVER
  }
})

const hostPort = z.string().regex(/^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]*):\d{1,5}$/, 'expected HOST:PORT, e.g. 127.0.0.1:5000')

const endpoint = z.string().refine((v) => {
  try {
    const u = new URL(v)
    return (u.protocol === 'http:' || u.protocol === 'https:') && u.pathname.replace(/\/+$/, '') === '' && u.search === ''
  } catch {
    return false
  }
}, 'expected an http:// or https:// base URL with no path, e.g. https://registry-1.docker.io')

const registryName = z.string().transform((v, ctx) => {
  try {
    return normalizeRegistry(v)
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: (err as Error).message })
    return z.NEVER
  }
})

export const registrySchema = z.strictObject({
  endpoint,
  tagTTL: duration.optional(),
})

export const configSchema = z.strictObject({
  listen: hostPort.default('127.0.0.1:5000'),
  dataDir: z.string().min(1).default('./flotilla-data'),
  defaultRegistry: registryName.default('docker.io'),
  logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  credentialsFile: z.string().optional(),
  tagTTL: duration.prefault(5 * 60),
  shutdownTimeout: duration.prefault(20),
  /** How long a client waits for its first byte, or for an error it can fall back on (its next host). */
  firstByteTimeout: duration.prefault(5),
  /** How long a stream may make no progress before it is resumed from another source or cut. */
  stallTimeout: duration.prefault(5),
  /** A second listener for /metrics, /healthz and /readyz; unset, /metrics answers loopback clients only. */
  metricsListen: hostPort.optional(),
  tls: z.strictObject({ cert: z.string().min(1), key: z.string().min(1) }).optional(),
  upstream: z.strictObject({
    connectTimeout: duration.prefault(5),
    headersTimeout: duration.prefault(15),
    bodyTimeout: duration.prefault(30),
    retries: z.number().int().min(0).max(10).default(2),
  }).prefault({}),
  registries: z.record(z.string(), registrySchema).optional(),
  containerd: z.strictObject({
    socket: z.string().min(1).optional(),
    namespace: z.string().min(1).default('k8s.io'),
    contentDir: z.string().min(1).optional(),
  }).prefault({}),
  p2p: z.strictObject({
    listen: z.string().min(1).optional(),
    bootstrap: z.array(z.string().min(1)).default([]),
    clusterKeyFile: z.string().min(1).optional(),
    zone: z.string().min(1).optional(),
    peerAddress: hostPort.optional(),
    /** Peers this node streams a digest it owns to at once; more are sent on to those peers (a tree). */
    ownerFanout: z.coerce.number().int().min(1).max(1000).default(4),
  }).prefault({}),
})

export type ConfigInput = z.input<typeof configSchema>
export type ParsedConfig = z.output<typeof configSchema>

export const DEFAULT_REGISTRIES: Readonly<Record<string, string>> = {
  'docker.io': 'https://registry-1.docker.io',
  'ghcr.io': 'https://ghcr.io',
  'quay.io': 'https://quay.io',
  'registry.k8s.io': 'https://registry.k8s.io',
  'gcr.io': 'https://gcr.io',
}

export interface RegistryConfig {
  readonly endpoint: string
  readonly tagTtlMs: number
}

/** The validated configuration the daemon runs with. */
export interface Config extends Omit<ParsedConfig, 'registries' | 'tagTTL' | 'shutdownTimeout' | 'firstByteTimeout' | 'stallTimeout'> {
  readonly tagTtlMs: number
  readonly shutdownTimeoutMs: number
  readonly firstByteTimeoutMs: number
  readonly stallTimeoutMs: number
  readonly registries: ReadonlyMap<string, RegistryConfig>
}
