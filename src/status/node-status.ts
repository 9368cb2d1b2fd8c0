import type { PrecacheStatus } from '../precache/precache-status.js'

/**
 * What `GET /status.json` answers, `/status` renders and `flotilla status` prints: one node at a glance.
 * Times are ISO 8601 strings, byte counts numbers; absent facts are null, never missing keys.
 */
export interface NodeStatus {
  readonly node: {
    readonly role: string
    readonly version: string
    readonly zone: string | null
    /** The registry API address. */
    readonly address: string
    readonly startedAt: string
    readonly uptimeSeconds: number
    /** When this status was taken (the agent's clock). */
    readonly now: string
  }
  /** Connected peers; empty without p2p. */
  readonly peers: ReadonlyArray<{
    readonly id: string
    /** host:port of its registry API, when it said. */
    readonly address: string | null
    readonly zone: string | null
    readonly lastSeen: string | null
  }>
  readonly store: {
    readonly bytes: number
    readonly ownBytes: number | null
    readonly linkedBytes: number | null
    readonly budgetBytes: number | null
    readonly evictions: number
    readonly evictedBytes: number
  }
  /** Blob downloads running now. */
  readonly downloads: ReadonlyArray<{
    readonly digest: string
    /** The registry it is asked of upstream; null when no upstream is among its sources. */
    readonly registry: string | null
    /** Not known to the download itself (one download serves every repository asking for the digest): null until it is. */
    readonly repository: string | null
    readonly bytesDone: number
    readonly size: number | null
    /** Bytes per second over the download so far. */
    readonly rate: number
    readonly source: string
    readonly startedAt: string
  }>
  readonly precache: PrecacheStatus | null
  /** Upstream registries (and, later, chained mirrors). */
  readonly upstreams: ReadonlyArray<{
    readonly registry: string
    readonly endpoint: string
    readonly circuit: 'closed' | 'open' | 'half-open'
    readonly lastError: string | null
    readonly lastErrorAt: string | null
  }>
  /** The last errors answered or logged (newest first, bounded). */
  readonly recentErrors: ReadonlyArray<{ readonly at: string, readonly message: string }>
  /** Bytes served to clients by where they came from (hit = this node, peer, upstream, ...). */
  readonly servedBytes: Readonly<Record<string, number>>
  /** Bytes served that did not have to come from upstream (served minus fetched upstream). */
  readonly upstreamBytesSaved: number
}
