import './polyfill.js'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { identify, type Identify } from '@libp2p/identify'
import type { Libp2p, PeerId, PeerInfo as Libp2pPeerInfo } from '@libp2p/interface'
import { kadDHT, removePublicAddressesMapper, type KadDHT } from '@libp2p/kad-dht'
import { peerIdFromString } from '@libp2p/peer-id'
import { ping, type Ping } from '@libp2p/ping'
import { preSharedKey } from '@libp2p/pnet'
import { tcp } from '@libp2p/tcp'
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'
import { createLibp2p } from 'libp2p'
import type { CID } from 'multiformats/cid'
import type { Logger } from 'pino'
import { hostPortOf, parseBootstrapTarget, type BootstrapTarget } from './bootstrap-target.js'
import { Bootstrapper } from './bootstrapper.js'
import { Channel, linkSignals } from './channel.js'
import { parseClusterKey } from './cluster-key.js'
import { loadOrCreateIdentity } from './identity.js'
import { keyToCid } from './key-cid.js'
import { createHoldingsHandler, holdingsProtocol, requestHoldings } from './holdings-protocol.js'
import { createInfoHandler, encodePeerInfo, infoProtocol, requestPeerInfo } from './peer-info-protocol.js'
import { ProviderIndexedDatastore } from './provider-indexed-datastore.js'
import { isHostPort, type FindProvidersOptions, type PeerInfo, type Router } from './router.js'

export { generateClusterKey, parseClusterKey } from './cluster-key.js'

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

const DEFAULTS = {
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
  meetConcurrency: 8,
  addressesPerPeer: 4,
} as const

/** The Router over libp2p, plus what a status page or a test needs to know about the node. */
export interface Libp2pRouter extends Router {
  /** Our dialable multiaddrs, each ending in `/p2p/<id>`. */
  multiaddrs (): string[]
}

type Services = { identify: Identify, ping: Ping, dht: KadDHT }

interface DhtInternals {
  readonly routingTable?: { readonly size?: number }
  readonly providers?: {
    getProviders?: (cid: CID, options: { signal: AbortSignal }) => Promise<PeerId[]>
    addProvider?: (cid: CID, provider: PeerId) => Promise<void>
  }
}

/**
 * Creates and starts a Kademlia DHT router on a private (PSK) libp2p network: TCP, noise, yamux,
 * identify, ping, DHT server mode with private addresses kept. Bootstraps in the background; check
 * `ready()`.
 */
export async function createLibp2pRouter (options: Libp2pRouterOptions): Promise<Libp2pRouter> {
  const config = validate(options)
  const identity = await loadOrCreateIdentity(options.identityFile)
  if (identity.hadLoosePermissions) options.logger.warn({ file: options.identityFile }, 'p2p identity file was readable by others; changed to 0600')
  const prefix = config.protocolPrefix
  const libp2p = await createLibp2p<Services>({
    start: false,
    // provider lookups read one CID's records instead of scanning them all
    datastore: new ProviderIndexedDatastore(),
    privateKey: identity.privateKey,
    nodeInfo: { name: 'flotilla' },
    addresses: { listen: [options.listen] },
    transports: [tcp()],
    connectionProtector: preSharedKey({ psk: config.psk }),
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    connectionManager: {
      // a whole cluster may dial one bootstrap node at once, many from one host in tests
      inboundConnectionThreshold: 1000,
      maxIncomingPendingConnections: 256,
      maxConnections: 1024,
      dialTimeout: config.dialTimeoutMs,
    },
    services: {
      identify: identify(),
      ping: ping(),
      dht: kadDHT({
        protocol: `${prefix}/kad/1.0.0`,
        clientMode: false,
        ...(options.kBucketSize === undefined ? {} : { kBucketSize: options.kBucketSize }),
        // cluster addresses are private: keep them, drop public ones
        peerInfoMapper: removePublicAddressesMapper,
        reprovide: {
          validity: config.recordTtlMs,
          // also the sweep of expired records held for others
          interval: Math.max(1_000, Math.min(5 * 60_000, Math.floor(config.recordTtlMs / 4))),
          // we re-announce ourselves (readvertiseIntervalMs); kad-dht only steps in if our records lapse
          threshold: 0,
        },
      }),
    },
  })
  const router = new Libp2pRouterImpl(libp2p, options, config)
  try {
    await router.start()
  } catch (err) {
    try { await libp2p.stop() } catch { /* keep the start error */ }
    throw err
  }
  return router
}

interface Config {
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

function validate (options: Libp2pRouterOptions): Config {
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

class Libp2pRouterImpl implements Libp2pRouter {
  readonly #libp2p: Libp2p<Services>
  readonly #log: Logger
  readonly #config: Config
  readonly #self: PeerInfo
  readonly #infoProtocol: string
  readonly #holdingsProtocol: string
  /** Keys we announce, with their DHT keys. */
  readonly #advertised = new Map<string, CID>()
  /** Info of flotilla peers by peer id (bounded, oldest dropped first). */
  readonly #info = new Map<string, PeerInfo>()
  readonly #infoInflight = new Map<string, Promise<PeerInfo>>()
  /** Connected peers whose info request failed, and when. */
  readonly #infoFailedAt = new Map<string, number>()
  /** Flotilla peers connected now. */
  readonly #connected = new Set<string>()
  /** Peers being dialed because another node listed them (full mesh of a small cluster). */
  readonly #meeting = new Set<string>()
  /** Listed peers we could not dial, and when (they are not dialed again before INFO_RETRY_MS). */
  readonly #dialFailedAt = new Map<string, number>()
  #meshTimer: NodeJS.Timeout | undefined
  readonly #shutdown = new AbortController()
  readonly #bootstrapper: Bootstrapper
  #readvertiseTimer: NodeJS.Timeout | undefined
  #readvertising: Promise<void> | undefined
  #closed = false

  constructor (libp2p: Libp2p<Services>, options: Libp2pRouterOptions, config: Config) {
    this.#libp2p = libp2p
    this.#log = options.logger
    this.#config = config
    this.#infoProtocol = infoProtocol(config.protocolPrefix)
    this.#holdingsProtocol = holdingsProtocol(config.protocolPrefix)
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
  }

  async start (): Promise<void> {
    const libp2p = this.#libp2p
    await libp2p.handle(this.#infoProtocol, createInfoHandler(async () => encodePeerInfo(this.#self, this.#knowsWholeCluster() ? await this.#peerAddresses() : []), this.#config.infoTimeoutMs), { maxInboundStreams: 64 })
    await libp2p.handle(this.#holdingsProtocol, createHoldingsHandler(() => this.#advertised.keys(), DEFAULTS.holdingsTimeoutMs), { maxInboundStreams: 16 })
    // fires after identify shows the peer speaks our info protocol, i.e. it is a flotilla node of this cluster
    await libp2p.register(this.#infoProtocol, {
      onConnect: (peerId) => this.#onPeerConnect(peerId),
      onDisconnect: (peerId) => this.#onPeerDisconnect(peerId),
    })
    await libp2p.start()
    this.#log.info({ peerId: this.#self.id, multiaddrs: this.multiaddrs(), bootstrap: this.#config.targets.length }, 'p2p router started')
    this.#bootstrapper.start()
    this.#scheduleReadvertise(this.#config.readvertiseIntervalMs)
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
    signal?.throwIfAborted()
    if (this.#closed || keys.length === 0) return
    const cids: CID[] = []
    for (const key of keys) {
      const cid = this.#advertised.get(key) ?? keyToCid(key)
      this.#advertised.set(key, cid)
      cids.push(cid)
    }
    // with nobody to tell, the keys wait for the first peer (see #onPeerConnect)
    if (this.#connected.size === 0) return
    await this.#provide(cids, signal)
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
      if (this.#closed) continue
      await this.#libp2p.services.dht.cancelReprovide(cid).catch((err: unknown) => {
        this.#log.debug({ err, key }, 'p2p: could not drop local provider record')
      })
    }
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
    clearTimeout(this.#readvertiseTimer)
    clearInterval(this.#meshTimer)
    this.#shutdown.abort(new Error('p2p router closed'))
    await this.#readvertising?.catch(() => {})
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
      const local = await this.#localProviders(cid, signal)
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
        if (this.#knowsWholeCluster()) this.#meet(peers)
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
    this.#dialFailedAt.delete(id)
    const wasAlone = this.#connected.size === 0
    this.#connected.add(id)
    if (wasAlone) {
      this.#log.info({ peer: id }, 'p2p: connected to the cluster')
      // keys advertised while we had no peers go out now
      if (this.#advertised.size > 0) this.#scheduleReadvertise(500)
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
    return this.#dhtInternals().routingTable?.size ?? 0
  }

  /** Whether the routing table holds fewer peers than a k-bucket (`k`), i.e. announcements go to every node. */
  #knowsWholeCluster (): boolean {
    const size = this.#dhtInternals().routingTable?.size
    return size !== undefined && size < this.#libp2p.services.dht.k
  }

  /** Provider records this node holds for `cid` (its own and those others announced to it), without asking anyone. */
  async #localProviders (cid: CID, signal: AbortSignal): Promise<PeerId[] | undefined> {
    const providers = this.#dhtInternals().providers
    if (typeof providers?.getProviders !== 'function') return undefined
    return await providers.getProviders(cid, { signal })
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
      .then(async (keys) => {
        const providers = this.#dhtInternals().providers
        if (typeof providers?.addProvider !== 'function') return
        for (const key of keys) await providers.addProvider(keyToCid(key), peerId)
      })
      .catch((err: unknown) => {
        if (!this.#closed) this.#log.debug({ err, peer: id }, 'p2p: could not fetch peer holdings')
      })
      .finally(() => bounded.dispose())
  }

  /** Multiaddrs (with `/p2p/<id>`) of the flotilla peers connected now, loopback ones only when a peer has no other. */
  async #peerAddresses (): Promise<string[]> {
    const out: string[] = []
    for (const id of this.#connected) {
      const peer = await this.#libp2p.peerStore.get(peerIdFromString(id)).catch(() => undefined)
      if (peer === undefined) continue
      const all = peer.addresses.map(({ multiaddr: ma }) => ma).filter((ma) => hostPortOf(ma) !== undefined)
      const outside = all.filter((ma) => !isLoopback(ma))
      for (const ma of (outside.length > 0 ? outside : all).slice(0, DEFAULTS.addressesPerPeer)) {
        out.push(ma.getComponents().some((c) => c.name === 'p2p') ? ma.toString() : `${ma.toString()}/p2p/${id}`)
      }
    }
    return out
  }

  /** Dials the listed nodes we are not connected to (a few at a time); failures only cost a debug line. */
  #meet (addresses: readonly string[]): void {
    for (const [id, at] of this.#dialFailedAt) if (Date.now() - at >= DEFAULTS.infoRetryMs) this.#dialFailedAt.delete(id)
    const byPeer = new Map<string, Multiaddr[]>()
    for (const text of addresses) {
      let ma: Multiaddr
      try {
        ma = multiaddr(text)
      } catch {
        continue
      }
      const id = ma.getComponents().findLast((c) => c.name === 'p2p')?.value
      if (id === undefined || id === this.#self.id || this.#connected.has(id) || this.#meeting.has(id)) continue
      byPeer.set(id, [...(byPeer.get(id) ?? []), ma])
    }
    for (const [id, mas] of byPeer) {
      if (this.#closed || this.#meeting.size >= DEFAULTS.meetConcurrency) return
      if (this.#dialFailedAt.has(id)) continue
      this.#meeting.add(id)
      const bounded = linkSignals([this.#shutdown.signal], this.#config.dialTimeoutMs)
      this.#libp2p.dial(mas, { signal: bounded.signal })
        .catch((err: unknown) => {
          if (this.#closed) return
          this.#dialFailedAt.set(id, Date.now())
          this.#log.debug({ err, peer: id }, 'p2p: could not dial a peer another node listed')
        })
        .finally(() => {
          bounded.dispose()
          this.#meeting.delete(id)
        })
    }
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

  /**
   * kad-dht's routing table size and provider store: public fields of its KadDHT class, not of the interface,
   * which has no way to count the table's peers nor to read or add provider records without a network query.
   */
  #dhtInternals (): DhtInternals {
    return this.#libp2p.services.dht as KadDHT & DhtInternals
  }

  // ---- advertising ----

  async #provide (cids: readonly CID[], signal?: AbortSignal): Promise<void> {
    const dht = this.#libp2p.services.dht
    let next = 0
    let failed = 0
    let firstError: unknown
    const worker = async (): Promise<void> => {
      while (next < cids.length && !this.#closed && signal?.aborted !== true) {
        const cid = cids[next++] as CID
        const bounded = linkSignals([signal, this.#shutdown.signal], this.#config.provideTimeoutMs)
        try {
          for await (const _event of dht.provide(cid, { signal: bounded.signal })) { /* drain */ }
        } catch (err) {
          failed++
          firstError ??= err
        } finally {
          bounded.dispose()
        }
      }
    }
    await Promise.all(Array.from({ length: Math.min(DEFAULTS.provideConcurrency, cids.length) }, worker))
    if (failed > 0 && !this.#closed && signal?.aborted !== true) {
      this.#log.warn({ err: firstError, failed, total: cids.length }, 'p2p: some keys could not be advertised; will retry')
    }
  }

  #scheduleReadvertise (delayMs: number): void {
    if (this.#closed) return
    clearTimeout(this.#readvertiseTimer)
    this.#readvertiseTimer = setTimeout(() => {
      this.#readvertising ??= this.#readvertise().finally(() => {
        this.#readvertising = undefined
        this.#scheduleReadvertise(this.#config.readvertiseIntervalMs)
      })
    }, delayMs)
    this.#readvertiseTimer.unref()
  }

  async #readvertise (): Promise<void> {
    if (this.#advertised.size === 0 || this.#connected.size === 0) return
    const started = Date.now()
    const cids = [...this.#advertised.values()]
    await this.#provide(cids)
    this.#log.debug({ keys: cids.length, ms: Date.now() - started }, 'p2p: re-advertised keys')
  }
}

function isLoopback (ma: Multiaddr): boolean {
  const host = hostPortOf(ma)?.host
  return host !== undefined && (host.startsWith('127.') || host === '::1')
}
