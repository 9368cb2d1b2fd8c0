import type { PeerId } from '@libp2p/interface'
import type { KadDHT } from '@libp2p/kad-dht'
import type { CID } from 'multiformats/cid'
import type { Logger } from 'pino'
import { linkSignals } from './channel.js'
import { addLocalProvider } from './dht-internals.js'
import { keyToCid } from './key-cid.js'
import { provideKeys } from './provide-keys.js'

export interface KeyAnnouncerOptions {
  readonly dht: KadDHT
  readonly self: PeerId
  /** Flotilla peers connected now. */
  readonly connected: ReadonlySet<string>
  /** Whether the routing table holds fewer peers than a k-bucket: then an announcement goes to every node. */
  readonly knowsWholeCluster: () => boolean
  /** Tells one connected peer the keys; resolves once it keeps them (the announce protocol). */
  readonly push: (peer: string, keys: readonly string[], signal: AbortSignal) => Promise<void>
  readonly logger: Logger
  readonly shutdown: AbortSignal
  /** Bound on one announcement (a push to every peer, or one key's DHT walk). */
  readonly timeoutMs: number
  readonly readvertiseIntervalMs: number
  /** Keys announced through the DHT at once. */
  readonly walkConcurrency: number
}

/**
 * The keys this node announces, and their announcements: in a cluster smaller than a k-bucket, straight to
 * every connected peer (one stream per peer for all the keys of a call); otherwise, or when a peer could
 * not be told (one that does not speak the announce protocol yet), through the DHT, which walks to the k
 * nodes nearest each key. Every key is announced again each `readvertiseIntervalMs`, before records lapse.
 */
export class KeyAnnouncer {
  readonly #o: KeyAnnouncerOptions
  /** Keys we announce, with their DHT keys. */
  readonly #advertised = new Map<string, CID>()
  #timer: NodeJS.Timeout | undefined
  #readvertising: Promise<void> | undefined

  constructor (options: KeyAnnouncerOptions) {
    this.#o = options
  }

  keys (): IterableIterator<string> {
    return this.#advertised.keys()
  }

  start (): void {
    this.#schedule(this.#o.readvertiseIntervalMs)
  }

  async advertise (keys: readonly string[], signal?: AbortSignal): Promise<void> {
    signal?.throwIfAborted()
    if (this.#o.shutdown.aborted || keys.length === 0) return
    for (const key of keys) if (!this.#advertised.has(key)) this.#advertised.set(key, keyToCid(key))
    // with nobody to tell, the keys wait for the first peer (see peerConnected)
    if (this.#o.connected.size === 0) return
    await this.#announce(keys, signal)
    signal?.throwIfAborted()
  }

  /**
   * Stops announcing the keys. Kademlia has no un-provide: records already held by other nodes stay
   * until they expire (recordTtlMs). Our own answer to lookups drops the keys at once.
   */
  async withdraw (keys: readonly string[]): Promise<void> {
    for (const key of keys) {
      const cid = this.#advertised.get(key)
      if (cid === undefined) continue
      this.#advertised.delete(key)
      if (this.#o.shutdown.aborted) continue
      await this.#o.dht.cancelReprovide(cid).catch((err: unknown) => {
        this.#o.logger.debug({ err, key }, 'p2p: could not drop local provider record')
      })
    }
  }

  /** The first peer came: keys advertised while we had none go out now. */
  firstPeerConnected (): void {
    if (this.#advertised.size > 0) this.#schedule(500)
  }

  async close (): Promise<void> {
    clearTimeout(this.#timer)
    await this.#readvertising?.catch(() => {})
  }

  async #announce (keys: readonly string[], signal?: AbortSignal): Promise<void> {
    const cids = keys.map((key) => this.#advertised.get(key) ?? keyToCid(key))
    if (this.#o.knowsWholeCluster() && await this.#pushToEveryPeer(keys, cids, signal)) return
    const { failed, firstError } = await provideKeys(this.#o.dht, cids, {
      signals: [signal, this.#o.shutdown], timeoutMs: this.#o.timeoutMs, concurrency: this.#o.walkConcurrency,
    })
    if (failed > 0 && !this.#o.shutdown.aborted && signal?.aborted !== true) {
      this.#o.logger.warn({ err: firstError, failed, total: cids.length }, 'p2p: some keys could not be advertised; will retry')
    }
  }

  /** Our own records (lookups others send us answer from them), then every connected peer told; false if any was not. */
  async #pushToEveryPeer (keys: readonly string[], cids: readonly CID[], signal?: AbortSignal): Promise<boolean> {
    for (const cid of cids) if (!await addLocalProvider(this.#o.dht, cid, this.#o.self)) return false
    const bounded = linkSignals([signal, this.#o.shutdown], this.#o.timeoutMs)
    try {
      const results = await Promise.allSettled([...this.#o.connected].map(async (peer) => { await this.#o.push(peer, keys, bounded.signal) }))
      const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected')
      if (failed === undefined) return true
      if (!bounded.signal.aborted) this.#o.logger.debug({ err: failed.reason, keys: keys.length }, 'p2p: a peer could not be told; announcing through the DHT')
      return false
    } finally {
      bounded.dispose()
    }
  }

  #schedule (delayMs: number): void {
    if (this.#o.shutdown.aborted) return
    clearTimeout(this.#timer)
    this.#timer = setTimeout(() => {
      this.#readvertising ??= this.#readvertise().finally(() => {
        this.#readvertising = undefined
        this.#schedule(this.#o.readvertiseIntervalMs)
      })
    }, delayMs)
    this.#timer.unref()
  }

  async #readvertise (): Promise<void> {
    if (this.#advertised.size === 0 || this.#o.connected.size === 0) return
    const started = Date.now()
    const keys = [...this.#advertised.keys()]
    await this.#announce(keys)
    this.#o.logger.debug({ keys: keys.length, ms: Date.now() - started }, 'p2p: re-advertised keys')
  }
}
