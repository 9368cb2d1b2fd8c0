import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'
import type { Logger } from 'pino'
import { hostPortOf, parseBootstrapTarget, type BootstrapTarget } from './bootstrap-target.js'
import { parseClusterKey } from './cluster-key.js'
import { isHostPort } from './router.js'

export interface Libp2pRouterOptions {
  /** TCP multiaddr to listen on, e.g. `/ip4/0.0.0.0/tcp/5001` (port 0 picks one). */
  listen: string
  /** Multiaddrs with or without `/p2p/<id>`, or `dns:NAME[:PORT]` (port defaults to ours). Empty: alone. */
  bootstrap: readonly string[]
  /** Contents of the cluster key file (libp2p pnet format, see `generateClusterKey`). */
  clusterKey: Uint8Array
  /** Persistent Ed25519 key; created with mode 0600 when missing. */
  identityFile: string
  /** `host:port` advertised to peers as where our registry API is. */
  httpAddress: string
  zone?: string
  logger: Logger
  /** How often every advertised key is announced again. */
  readvertiseIntervalMs?: number
  /** How often the bootstrap list is dialed again (and the ceiling of the retry backoff). */
  bootstrapIntervalMs?: number
  /** How long other nodes keep our provider records; withdrawn keys disappear after this. Default 2×readvertise + 1 min. */
  recordTtlMs?: number
  /** Time to learn a provider's httpAddress over the info protocol (dial included). */
  infoTimeoutMs?: number
  /** Time for one bootstrap dial. */
  dialTimeoutMs?: number
  /** Time for announcing one key. */
  provideTimeoutMs?: number
  /** Protocol prefix: nodes only talk to nodes with the same prefix. */
  protocolPrefix?: string
  /** How often a small cluster's node asks a random peer whom it knows, and dials those it does not (full mesh). */
  meshIntervalMs?: number
  /**
   * Kademlia's k (default 20): announcements go to the k nodes nearest a key, and a node with fewer peers
   * than k answers lookups from its own records. Tests lower it to exercise a large cluster's DHT walks.
   */
  kBucketSize?: number
}

export const DEFAULTS = {
  readvertiseIntervalMs: 10 * 60_000,
  bootstrapIntervalMs: 30_000,
  infoTimeoutMs: 2_000,
  dialTimeoutMs: 5_000,
  provideTimeoutMs: 30_000,
  protocolPrefix: '/flotilla',
  provideConcurrency: 16,
  infoCacheSize: 4096,
  infoRetryMs: 5_000,
  meshIntervalMs: 10_000,
  holdingsTimeoutMs: 30_000,
  maxHoldingsPerPeer: 1_000_000,
} as const

/** The options, validated, with defaults filled in. */
export interface Libp2pRouterConfig {
  readonly psk: Uint8Array
  readonly targets: readonly BootstrapTarget[]
  readonly listenPort: number
  readonly isWildcardListen: boolean
  readonly readvertiseIntervalMs: number
  readonly bootstrapIntervalMs: number
  readonly recordTtlMs: number
  readonly infoTimeoutMs: number
  readonly dialTimeoutMs: number
  readonly provideTimeoutMs: number
  readonly protocolPrefix: string
  readonly meshIntervalMs: number
}

export function validateRouterOptions (options: Libp2pRouterOptions): Libp2pRouterConfig {
  let listen: Multiaddr
  try {
    listen = multiaddr(options.listen)
  } catch (err) {
    throw new TypeError(`invalid p2p listen address ${JSON.stringify(options.listen)}: expected a multiaddr such as /ip4/0.0.0.0/tcp/5001`, { cause: err })
  }
  const hostPort = hostPortOf(listen)
  if (hostPort === undefined || !listen.getComponents().some(c => c.name === 'ip4' || c.name === 'ip6')) {
    throw new TypeError(`invalid p2p listen address ${JSON.stringify(options.listen)}: expected /ip4/<ip>/tcp/<port> or /ip6/<ip>/tcp/<port>`)
  }
  if (options.kBucketSize !== undefined && (!Number.isInteger(options.kBucketSize) || options.kBucketSize < 1)) throw new TypeError('kBucketSize must be a positive integer')
  if (!isHostPort(options.httpAddress)) throw new TypeError(`httpAddress must be host:port, got ${JSON.stringify(options.httpAddress)}`)
  if (options.zone !== undefined && (options.zone.length === 0 || options.zone.length > 253)) throw new TypeError('zone must be 1–253 characters')
  const positive = (name: string, value: number | undefined, fallback: number): number => {
    const v = value ?? fallback
    if (!Number.isFinite(v) || v <= 0) throw new TypeError(`${name} must be a positive number of milliseconds`)
    return v
  }
  const readvertiseIntervalMs = positive('readvertiseIntervalMs', options.readvertiseIntervalMs, DEFAULTS.readvertiseIntervalMs)
  const prefix = options.protocolPrefix ?? DEFAULTS.protocolPrefix
  if (!/^\/[A-Za-z0-9._-]+(\/[A-Za-z0-9._-]+)*$/.test(prefix)) throw new TypeError(`protocolPrefix must look like /name, got ${JSON.stringify(prefix)}`)
  const recordTtlMs = positive('recordTtlMs', options.recordTtlMs, 2 * readvertiseIntervalMs + 60_000)
  if (recordTtlMs <= readvertiseIntervalMs) throw new TypeError('recordTtlMs must be longer than readvertiseIntervalMs, or records lapse between announcements')
  return {
    psk: parseClusterKey(options.clusterKey),
    targets: options.bootstrap.map(parseBootstrapTarget),
    listenPort: hostPort.port,
    isWildcardListen: hostPort.host === '0.0.0.0' || hostPort.host === '::',
    readvertiseIntervalMs,
    bootstrapIntervalMs: positive('bootstrapIntervalMs', options.bootstrapIntervalMs, DEFAULTS.bootstrapIntervalMs),
    recordTtlMs,
    infoTimeoutMs: positive('infoTimeoutMs', options.infoTimeoutMs, DEFAULTS.infoTimeoutMs),
    dialTimeoutMs: positive('dialTimeoutMs', options.dialTimeoutMs, DEFAULTS.dialTimeoutMs),
    provideTimeoutMs: positive('provideTimeoutMs', options.provideTimeoutMs, DEFAULTS.provideTimeoutMs),
    protocolPrefix: prefix,
    meshIntervalMs: positive('meshIntervalMs', options.meshIntervalMs, DEFAULTS.meshIntervalMs),
  }
}
