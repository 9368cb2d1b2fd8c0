import { randomUUID } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import { isHostPort, type FindProvidersOptions, type PeerInfo, type Router } from './router.js'

export interface MemoryRouterNetworkOptions {
  /** Delay before each lookup yields its providers, to exercise deadlines and hedging in tests. */
  findDelayMs?: number
}

export interface MemoryRouterOptions {
  /** Defaults to a random id. */
  id?: string
  httpAddress: string
  zone?: string
}

/**
 * A shared in-memory provider table: routers joined to one network see each other's advertisements, in
 * the order they were made. For tests and single-process setups; nothing leaves the process.
 */
export class MemoryRouterNetwork {
  readonly findDelayMs: number
  /** key → (router id → advertiser), insertion-ordered. */
  readonly #providers = new Map<string, Map<string, MemoryRouter>>()
  readonly #routers = new Map<string, MemoryRouter>()

  constructor (options: MemoryRouterNetworkOptions = {}) {
    const findDelayMs = options.findDelayMs ?? 0
    if (!Number.isFinite(findDelayMs) || findDelayMs < 0) throw new TypeError('findDelayMs must be a non-negative number')
    this.findDelayMs = findDelayMs
  }

  /** Creates a router on this network. */
  join (options: MemoryRouterOptions): MemoryRouter {
    return new MemoryRouter(this, options)
  }

  /** Ids of the routers advertising `key` now (for assertions in tests). */
  providersOf (key: string): string[] {
    return [...(this.#providers.get(key)?.keys() ?? [])]
  }

  /** @internal */
  attach (router: MemoryRouter): void {
    const id = router.self().id
    if (this.#routers.has(id)) throw new TypeError(`a router with id ${id} is already on this network`)
    this.#routers.set(id, router)
  }

  /** @internal */
  detach (router: MemoryRouter): void {
    const id = router.self().id
    this.#routers.delete(id)
    for (const [key, byId] of this.#providers) {
      byId.delete(id)
      if (byId.size === 0) this.#providers.delete(key)
    }
  }

  /** @internal */
  add (key: string, router: MemoryRouter): void {
    let byId = this.#providers.get(key)
    if (byId === undefined) {
      byId = new Map()
      this.#providers.set(key, byId)
    }
    byId.set(router.self().id, router)
  }

  /** @internal */
  remove (key: string, router: MemoryRouter): void {
    const byId = this.#providers.get(key)
    if (byId === undefined) return
    byId.delete(router.self().id)
    if (byId.size === 0) this.#providers.delete(key)
  }

  /** @internal */
  lookup (key: string): PeerInfo[] {
    return [...(this.#providers.get(key)?.values() ?? [])].map(router => router.self())
  }

  /** @internal */
  members (): PeerInfo[] {
    return [...this.#routers.values()].map(router => router.self())
  }
}

/**
 * Router over a MemoryRouterNetwork. Withdraw and close take effect at once (unlike the DHT, where
 * records expire); lookups see every advertisement on the network.
 */
export class MemoryRouter implements Router {
  readonly #network: MemoryRouterNetwork
  readonly #self: PeerInfo
  readonly #keys = new Set<string>()
  #closed = false

  constructor (network: MemoryRouterNetwork, options: MemoryRouterOptions) {
    if (!isHostPort(options.httpAddress)) throw new TypeError(`httpAddress must be host:port, got ${JSON.stringify(options.httpAddress)}`)
    const id = options.id ?? `memory-${randomUUID()}`
    this.#self = Object.freeze({ id, httpAddress: options.httpAddress, ...(options.zone === undefined ? {} : { zone: options.zone }) })
    this.#network = network
    network.attach(this)
  }

  ready (): boolean {
    return !this.#closed
  }

  async advertise (keys: readonly string[], signal?: AbortSignal): Promise<void> {
    signal?.throwIfAborted()
    if (this.#closed) return
    for (const key of keys) {
      this.#keys.add(key)
      this.#network.add(key, this)
    }
  }

  async withdraw (keys: readonly string[]): Promise<void> {
    for (const key of keys) {
      this.#keys.delete(key)
      this.#network.remove(key, this)
    }
  }

  async * findProviders (key: string, options: FindProvidersOptions): AsyncIterable<PeerInfo> {
    const { signal } = options
    const limit = options.limit ?? Infinity
    if (this.#closed || signal.aborted || limit <= 0) return
    if (this.#network.findDelayMs > 0) {
      try {
        await sleep(this.#network.findDelayMs, undefined, { signal })
      } catch {
        return
      }
    }
    let found = 0
    for (const peer of this.#network.lookup(key)) {
      if (signal.aborted) return
      if (peer.id === this.#self.id) continue
      yield peer
      if (++found >= limit) return
    }
  }

  peers (): readonly PeerInfo[] {
    if (this.#closed) return []
    return this.#network.members().filter(peer => peer.id !== this.#self.id)
  }

  self (): PeerInfo {
    return this.#self
  }

  /** Keys this router advertises now (for assertions in tests). */
  advertised (): readonly string[] {
    return [...this.#keys]
  }

  async close (): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    this.#keys.clear()
    this.#network.detach(this)
  }
}
