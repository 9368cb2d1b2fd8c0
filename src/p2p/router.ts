/**
 * The Router port: how a node finds which peers hold a key and tells others what it holds.
 * Keys are digests (`sha256:...`) and `registry/repo:tag` strings (see `keyToCid`).
 */

export interface PeerInfo {
  /** Stable peer identity (a libp2p peer id for the libp2p router). */
  readonly id: string
  /** `host:port` of the peer's registry API. */
  readonly httpAddress: string
  /** Topology zone of the peer, when it declared one. */
  readonly zone?: string
}

export interface FindProvidersOptions {
  /** Bounds the whole lookup; when it aborts the iteration ends quietly (a miss, not an error). */
  readonly signal: AbortSignal
  /** Stop after this many providers. */
  readonly limit?: number
}

export interface Router {
  /** True once the router can find and advertise (bootstrapped, or alone by choice). */
  ready (): boolean
  /**
   * Announce that this node holds the keys. Keys are remembered and re-advertised until withdrawn, so a
   * failed or aborted announcement is retried later; rejects only with the signal's reason.
   */
  advertise (keys: readonly string[], signal?: AbortSignal): Promise<void>
  /** Stop announcing the keys. Already published records may live on until they expire (libp2p). */
  withdraw (keys: readonly string[]): Promise<void>
  /** Providers of a key, nearest first as found; bounded by the signal. Never includes this node. */
  findProviders (key: string, options: FindProvidersOptions): AsyncIterable<PeerInfo>
  /** Live peers known now (for rendezvous hashing). Excludes this node: add `self()` yourself. */
  peers (): readonly PeerInfo[]
  self (): PeerInfo
  close (): Promise<void>
}

const HOST_PORT_RE = /^(?:\[[0-9a-fA-F:.]+\]|[A-Za-z0-9._-]+):(\d{1,5})$/

/** Whether `s` looks like `host:port` (IPv6 hosts in brackets), with a port in 1–65535. */
export function isHostPort (s: string): boolean {
  const m = HOST_PORT_RE.exec(s)
  if (m === null) return false
  const port = Number(m[1])
  return port >= 1 && port <= 65535
}
