import './polyfill.js'
import type { Libp2p, PeerId, PeerInfo as Libp2pPeerInfo } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import type { CID } from 'multiformats/cid'
import type { Logger } from 'pino'
import { Bootstrapper } from './bootstrapper.js'
import { addLocalProvider, localProviders, routingTableSize } from './dht-internals.js'
import { createLibp2pNode, type Libp2pServices } from './libp2p-node.js'
import { Channel, linkSignals } from './channel.js'
import { ClusterMesh } from './cluster-mesh.js'
import { loadOrCreateIdentity } from './identity.js'
import { keyToCid } from './key-cid.js'
import { announceProtocol, createAnnounceHandler, sendAnnouncement } from './announce-protocol.js'
import { createHoldingsHandler, holdingsProtocol, requestHoldings } from './holdings-protocol.js'
import { createInfoHandler, encodePeerInfo, infoProtocol, requestPeerInfo } from './peer-info-protocol.js'
import { DEFAULTS, validateRouterOptions, type Libp2pRouterConfig, type Libp2pRouterOptions } from './libp2p-router-options.js'
import { KeyAnnouncer } from './key-announcer.js'
import type { FindProvidersOptions, PeerInfo, Router } from './router.js'

export { generateClusterKey, parseClusterKey } from './cluster-key.js'
export type { Libp2pRouterOptions } from './libp2p-router-options.js'

/** The Router over libp2p, plus what a status page or a test needs to know about the node. */
export interface Libp2pRouter extends Router {
  /** Our dialable multiaddrs, each ending in `/p2p/<id>`. */
  multiaddrs (): string[]
}

/**
 * Creates and starts a Kademlia DHT router on a private (PSK) libp2p network: TCP, noise, yamux,
 * identify, ping, DHT server mode with private addresses kept. Bootstraps in the background; check
 * `ready()`.
 */
export async function createLibp2pRouter (options: Libp2pRouterOptions): Promise<Libp2pRouter> {
  const config = validateRouterOptions(options)
  const identity = await loadOrCreateIdentity(options.identityFile)
  if (identity.hadLoosePermissions) options.logger.warn({ file: options.identityFile }, 'p2p identity file was readable by others; changed to 0600')
  const libp2p = await createLibp2pNode(options, config, identity.privateKey)
  const router = new Libp2pRouterImpl(libp2p, options, config)
  try {
    await router.start()
  } catch (err) {
    try { await libp2p.stop() } catch { /* keep the start error */ }
    throw err
  }
  return router
}

class Libp2pRouterImpl implements Libp2pRouter {
  readonly #libp2p: Libp2p<Libp2pServices>
  readonly #log: Logger
  readonly #config: Libp2pRouterConfig
  readonly #self: PeerInfo
  readonly #infoProtocol: string
  readonly #holdingsProtocol: string
  readonly #announceProtocol: string
  readonly #keys: KeyAnnouncer
  /** Info of flotilla peers by peer id (bounded, oldest dropped first). */
  readonly #info = new Map<string, PeerInfo>()
  readonly #infoInflight = new Map<string, Promise<PeerInfo>>()
  /** Connected peers whose info request failed, and when. */
  readonly #infoFailedAt = new Map<string, number>()
  /** Flotilla peers connected now. */
  readonly #connected = new Set<string>()
  /** A small cluster's full mesh: whom peers list, dialed when we lack them. */
  readonly #mesh: ClusterMesh
  #meshTimer: NodeJS.Timeout | undefined
  readonly #shutdown = new AbortController()
  readonly #bootstrapper: Bootstrapper
  #closed = false

  constructor (libp2p: Libp2p<Libp2pServices>, options: Libp2pRouterOptions, config: Libp2pRouterConfig) {
    this.#libp2p = libp2p
    this.#log = options.logger
    this.#config = config
    this.#infoProtocol = infoProtocol(config.protocolPrefix)
    this.#holdingsProtocol = holdingsProtocol(config.protocolPrefix)
    this.#announceProtocol = announceProtocol(config.protocolPrefix)
    this.#self = Object.freeze({
      id: libp2p.peerId.toString(),
      httpAddress: options.httpAddress,
      ...(options.zone === undefined ? {} : { zone: options.zone }),
    })
    this.#bootstrapper = new Bootstrapper({
      libp2p,
      targets: config.targets,
      logger: options.logger,
      listenPort: config.listenPort,
      isWildcardListen: config.isWildcardListen,
      intervalMs: config.bootstrapIntervalMs,
      dialTimeoutMs: config.dialTimeoutMs,
      isConnected: () => this.#connected.size > 0,
    })
    this.#mesh = new ClusterMesh({
      libp2p, selfId: this.#self.id, connected: this.#connected, logger: options.logger,
      dialTimeoutMs: config.dialTimeoutMs, shutdown: this.#shutdown.signal,
    })
    this.#keys = new KeyAnnouncer({
      dht: libp2p.services.dht, self: libp2p.peerId, connected: this.#connected, knowsWholeCluster: () => this.#knowsWholeCluster(),
      push: async (peer, keys, signal) => { await sendAnnouncement(libp2p, this.#announceProtocol, peerIdFromString(peer), keys, signal) },
      logger: options.logger, shutdown: this.#shutdown.signal, timeoutMs: config.provideTimeoutMs,
      readvertiseIntervalMs: config.readvertiseIntervalMs, walkConcurrency: DEFAULTS.provideConcurrency,
    })
  }

  async start (): Promise<void> {
    const libp2p = this.#libp2p
    await libp2p.handle(this.#infoProtocol, createInfoHandler(async () => encodePeerInfo(this.#self, this.#knowsWholeCluster() ? await this.#mesh.peerAddresses() : []), this.#config.infoTimeoutMs), { maxInboundStreams: 64 })
    await libp2p.handle(this.#holdingsProtocol, createHoldingsHandler(() => this.#keys.keys(), DEFAULTS.holdingsTimeoutMs), { maxInboundStreams: 16 })
    await libp2p.handle(this.#announceProtocol, createAnnounceHandler(async (peer, keys) => { await this.#keepRecords(peer, keys) }, DEFAULTS.holdingsTimeoutMs, { maxKeys: DEFAULTS.maxHoldingsPerPeer }), { maxInboundStreams: 64 })
    // fires after identify shows the peer speaks our info protocol, i.e. it is a flotilla node of this cluster
    await libp2p.register(this.#infoProtocol, {
      onConnect: (peerId) => this.#onPeerConnect(peerId),
      onDisconnect: (peerId) => this.#onPeerDisconnect(peerId),
    })
    await libp2p.start()
    this.#log.info({ peerId: this.#self.id, multiaddrs: this.multiaddrs(), bootstrap: this.#config.targets.length }, 'p2p router started')
    this.#bootstrapper.start()
    this.#keys.start()
    this.#meshTimer = setInterval(() => this.#refreshMesh(), this.#config.meshIntervalMs)
    this.#meshTimer.unref()
  }

  ready (): boolean {
    if (this.#closed) return false
    if (this.#config.targets.length === 0 || this.#bootstrapper.isAlone) return true
    return this.#connected.size > 0 && this.#routingTableSize() > 0
  }

  self (): PeerInfo {
    return this.#self
  }

  multiaddrs (): string[] {
    return this.#libp2p.getMultiaddrs().map(ma => ma.toString())
  }

  peers (): readonly PeerInfo[] {
    const peers: PeerInfo[] = []
    for (const id of this.#connected) {
      const info = this.#info.get(id)
      if (info !== undefined) peers.push(info)
      else this.#learnInfo(peerIdFromString(id)) // its first answer failed: ask again (rate-limited)
    }
    return peers
  }

  async advertise (keys: readonly string[], signal?: AbortSignal): Promise<void> {
    await this.#keys.advertise(keys, signal)
  }

  async withdraw (keys: readonly string[]): Promise<void> {
    await this.#keys.withdraw(keys)
  }

  async * findProviders (key: string, options: FindProvidersOptions): AsyncIterable<PeerInfo> {
    const limit = options.limit ?? Infinity
    if (this.#closed || options.signal.aborted || limit <= 0) return
    // an empty routing table would make kad-dht wait for a peer: answer the miss now
    if (this.#routingTableSize() === 0) return
    const cid = keyToCid(key)
    const lookup = linkSignals([options.signal, this.#shutdown.signal])
    const channel = new Channel<PeerInfo>()
    const onAbort = (): void => channel.end()
    lookup.signal.addEventListener('abort', onAbort, { once: true })
    void this.#collectProviders(key, cid, lookup.signal, channel)
    let found = 0
    try {
      for await (const info of channel) {
        yield info
        if (++found >= limit) return
      }
    } finally {
      lookup.signal.removeEventListener('abort', onAbort)
      // stops the DHT query and any info requests still running
      lookup.abort()
    }
  }

  async close (): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    this.#bootstrapper.stop()
    clearInterval(this.#meshTimer)
    this.#shutdown.abort(new Error('p2p router closed'))
    await this.#keys.close()
    await this.#libp2p.stop()
    this.#connected.clear()
    this.#log.info({ peerId: this.#self.id }, 'p2p router stopped')
  }

  // ---- lookups ----

  async #collectProviders (key: string, cid: CID, signal: AbortSignal, channel: Channel<PeerInfo>): Promise<void> {
    const seen = new Set<string>([this.#self.id])
    const pending = new Set<Promise<void>>()
    const offer = (provider: Libp2pPeerInfo): void => {
      const id = provider.id.toString()
      if (seen.has(id)) return
      seen.add(id)
      const info = this.#connected.has(id) ? this.#info.get(id) : undefined
      if (info !== undefined) {
        channel.push(info)
        return
      }
      // not connected or not known yet: ask it (which also proves it is alive), in parallel; the
      // request outlives this lookup if it must, so its answer is cached for the next one
      const task = this.#peerInfo(provider)
        .then(peerInfo => channel.push(peerInfo), (err: unknown) => {
          if (!signal.aborted) this.#log.debug({ err, peer: id }, 'p2p: provider unreachable')
        })
        .finally(() => pending.delete(task))
      pending.add(task)
    }
    try {
      // Provider records this node holds (its own and those others announced to it), without asking anyone.
      const local = await localProviders(this.#libp2p.services.dht, cid, signal)
      for (const id of local ?? []) offer({ id, multiaddrs: [] })
      // With fewer peers than a k-bucket holds, every announcement reached every node: what this node
      // holds is the whole answer, and a walk would only ask the others the same question.
      if (local === undefined || !this.#knowsWholeCluster()) {
        for await (const event of this.#libp2p.services.dht.findProviders(cid, { signal })) {
          if (event.name !== 'PROVIDER') continue
          for (const provider of event.providers) offer(provider)
        }
      }
    } catch (err) {
      if (!signal.aborted) this.#log.debug({ err }, 'p2p: provider lookup failed')
    }
    // after an abort the consumer has already gone (the channel ended); stragglers only fill the cache
    await Promise.all(pending)
    channel.end()
  }

  /** Asks a peer for its info (one request per peer at a time), bounded by infoTimeoutMs. */
  #peerInfo (provider: Libp2pPeerInfo): Promise<PeerInfo> {
    const id = provider.id.toString()
    const inflight = this.#infoInflight.get(id)
    if (inflight !== undefined) return inflight
    const request = (async () => {
      if (provider.multiaddrs.length > 0) {
        await this.#libp2p.peerStore.merge(provider.id, { multiaddrs: provider.multiaddrs }).catch(() => {})
      }
      const bounded = linkSignals([this.#shutdown.signal], this.#config.infoTimeoutMs)
      try {
        const { info, peers } = await requestPeerInfo(this.#libp2p, this.#infoProtocol, provider.id, bounded.signal)
        this.#remember(info)
        if (this.#knowsWholeCluster()) this.#mesh.meet(peers)
        return info
      } finally {
        bounded.dispose()
      }
    })()
    this.#infoInflight.set(id, request)
    request.then(() => this.#infoInflight.delete(id), () => this.#infoInflight.delete(id))
    return request
  }

  #remember (info: PeerInfo): void {
    this.#info.delete(info.id)
    this.#info.set(info.id, info)
    if (this.#info.size > DEFAULTS.infoCacheSize) {
      for (const id of this.#info.keys()) {
        if (this.#info.size <= DEFAULTS.infoCacheSize) break
        if (!this.#connected.has(id)) this.#info.delete(id)
      }
    }
  }

  #onPeerConnect (peerId: PeerId): void {
    const id = peerId.toString()
    if (this.#closed || this.#connected.has(id)) return
    this.#mesh.connected(id)
    const wasAlone = this.#connected.size === 0
    this.#connected.add(id)
    if (wasAlone) {
      this.#log.info({ peer: id }, 'p2p: connected to the cluster')
      this.#keys.firstPeerConnected()
    }
    // learn its registry address now so lookups answer from the cache
    this.#learnInfo(peerId)
    if (this.#knowsWholeCluster()) this.#learnHoldings(peerId)
  }

  /** Fetches a connected peer's info in the background, at most every INFO_RETRY_MS after a failure. */
  #learnInfo (peerId: PeerId): void {
    const id = peerId.toString()
    if (this.#closed || this.#infoInflight.has(id)) return
    const failedAt = this.#infoFailedAt.get(id)
    if (failedAt !== undefined && Date.now() - failedAt < DEFAULTS.infoRetryMs) return
    this.#peerInfo({ id: peerId, multiaddrs: [] }).then(
      () => this.#infoFailedAt.delete(id),
      (err: unknown) => {
        if (this.#closed) return
        this.#infoFailedAt.set(id, Date.now())
        this.#log.debug({ err, peer: id }, 'p2p: could not fetch peer info')
      },
    )
  }

  #onPeerDisconnect (peerId: PeerId): void {
    const id = peerId.toString()
    this.#infoFailedAt.delete(id)
    if (!this.#connected.delete(id) || this.#closed) return
    if (this.#connected.size === 0 && this.#config.targets.length > 0) {
      this.#log.warn({ peer: id }, 'p2p: lost the last peer; bootstrapping again')
      this.#bootstrapper.kick()
    }
  }

  #routingTableSize (): number {
    return routingTableSize(this.#libp2p.services.dht) ?? 0
  }

  /** Whether the routing table holds fewer peers than a k-bucket (`k`), i.e. announcements go to every node. */
  #knowsWholeCluster (): boolean {
    const size = routingTableSize(this.#libp2p.services.dht)
    return size !== undefined && size < this.#libp2p.services.dht.k
  }

  // ---- a small cluster's full mesh and shared knowledge ----

  /**
   * Asks a connected peer which keys it announces (once per connection) and keeps them as provider records
   * of that peer, as if its announcements had reached us: they expire like any other record.
   */
  #learnHoldings (peerId: PeerId): void {
    const id = peerId.toString()
    const bounded = linkSignals([this.#shutdown.signal], DEFAULTS.holdingsTimeoutMs)
    requestHoldings(this.#libp2p, this.#holdingsProtocol, peerId, bounded.signal, { maxKeys: DEFAULTS.maxHoldingsPerPeer })
      .then(async (keys) => { await this.#keepRecords(peerId, keys) })
      .catch((err: unknown) => {
        if (!this.#closed) this.#log.debug({ err, peer: id }, 'p2p: could not fetch peer holdings')
      })
      .finally(() => bounded.dispose())
  }

  /** Keeps the keys as provider records of `peer`, as if its announcements had reached us through the DHT. */
  async #keepRecords (peer: PeerId, keys: readonly string[]): Promise<void> {
    for (const key of keys) if (!await addLocalProvider(this.#libp2p.services.dht, keyToCid(key), peer)) return
  }

  /** Now and then, asks one random peer whom it is connected to (which meets the ones we missed). */
  #refreshMesh (): void {
    if (this.#closed || this.#connected.size === 0 || !this.#knowsWholeCluster()) return
    const ids = [...this.#connected]
    const id = ids[Math.floor(Math.random() * ids.length)] as string
    this.#peerInfo({ id: peerIdFromString(id), multiaddrs: [] }).catch((err: unknown) => {
      if (!this.#closed) this.#log.debug({ err, peer: id }, 'p2p: mesh refresh failed')
    })
  }
}
