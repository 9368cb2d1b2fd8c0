import { networkInterfaces } from 'node:os'
import type { Libp2p } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import type { Multiaddr } from '@multiformats/multiaddr'
import type { Logger } from 'pino'
import { linkSignals } from './channel.js'
import { endpointKey, hostPortOf, resolveBootstrapTargets, type BootstrapTarget } from './bootstrap-target.js'

export interface BootstrapperOptions {
  readonly libp2p: Libp2p
  readonly targets: readonly BootstrapTarget[]
  readonly logger: Logger
  /** Port we were asked to listen on (0: whatever was bound). */
  readonly listenPort: number
  /** We listen on 0.0.0.0 or ::, so any local interface address at our port is us. */
  readonly isWildcardListen: boolean
  /** Re-run period when connected, and the ceiling of the retry backoff. */
  readonly intervalMs: number
  readonly dialTimeoutMs: number
  /** Whether we are connected to at least one cluster peer now. */
  readonly isConnected: () => boolean
}

const FIRST_RETRY_MS = 250
/** `dns:` answers dialed per round: enough to join, without dialing the whole cluster every round. */
const DNS_TARGETS_PER_ROUND = 3
const LEARNED_IDS_SIZE = 1024
const P2P_CODE = 421

/**
 * Keeps a node joined to its cluster: dials the bootstrap targets now, again every `intervalMs`, with
 * backoff (250 ms doubling to `intervalMs`) while nothing answers, and at once when `kick()` says the
 * last peer is gone. Addresses without `/p2p/<id>` are dialed as they are and the peer id is learned
 * from the handshake, so operators only need addresses.
 */
export class Bootstrapper {
  readonly #o: BootstrapperOptions
  readonly #log: Logger
  /** Bootstrap address (without /p2p) → the peer id found there, so a live peer is not re-dialed. */
  readonly #learnedIds = new Map<string, string>()
  readonly #stopped = new AbortController()
  #timer: NodeJS.Timeout | undefined
  #backoffMs = 0
  #running = false
  #alone = false

  constructor (options: BootstrapperOptions) {
    this.#o = options
    this.#log = options.logger
  }

  /** The last round found no address but our own: a one-node cluster, ready on its own. */
  get isAlone (): boolean {
    return this.#alone
  }

  start (): void {
    if (this.#o.targets.length > 0) this.#schedule(0)
  }

  /** Re-run soon (the last peer went away). */
  kick (): void {
    this.#schedule(FIRST_RETRY_MS)
  }

  stop (): void {
    clearTimeout(this.#timer)
    this.#stopped.abort(new Error('bootstrap stopped'))
  }

  #schedule (delayMs: number): void {
    if (this.#stopped.signal.aborted || this.#o.targets.length === 0) return
    clearTimeout(this.#timer)
    const jittered = delayMs === 0 ? 0 : Math.round(delayMs * (0.8 + Math.random() * 0.4))
    this.#timer = setTimeout(() => { void this.#round() }, jittered)
    this.#timer.unref()
  }

  async #round (): Promise<void> {
    if (this.#running || this.#stopped.signal.aborted) return
    this.#running = true
    let dialed = 0
    const failures: Array<{ addr: string, err: unknown }> = []
    try {
      const selfId = this.#o.libp2p.peerId.toString()
      const { addrs, total } = await resolveBootstrapTargets(this.#o.targets, {
        defaultPort: this.#ownPort(),
        exclude: this.#ownEndpoints(),
        maxPerName: DNS_TARGETS_PER_ROUND,
        onError: (target, err) => failures.push({ addr: target.kind === 'dns' ? `dns:${target.name}` : target.addr.toString(), err }),
      })
      const others = addrs.filter(addr => addr.getComponents().find(c => c.name === 'p2p')?.value !== selfId)
      this.#alone = total > 0 && others.length === 0 && failures.length === 0
      const results = await Promise.allSettled(others.map(addr => this.#dial(addr)))
      for (const [i, result] of results.entries()) {
        if (result.status === 'fulfilled') dialed++
        else failures.push({ addr: others[i]?.toString() ?? '?', err: result.reason })
      }
    } catch (err) {
      failures.push({ addr: '*', err })
    } finally {
      this.#running = false
    }
    if (this.#stopped.signal.aborted) return
    if (dialed > 0 || this.#o.isConnected() || this.#alone) {
      if (failures.length > 0) this.#log.debug({ failures: describeFailures(failures) }, 'p2p: some bootstrap addresses failed')
      this.#backoffMs = 0
      this.#schedule(this.#o.intervalMs)
      return
    }
    const first = this.#backoffMs === 0
    this.#backoffMs = Math.min(this.#o.intervalMs, first ? FIRST_RETRY_MS : this.#backoffMs * 2)
    // warn on the first failure, then once per interval rather than at every quick retry
    if (first || this.#backoffMs === this.#o.intervalMs) {
      const isKeyMismatch = failures.some(f => (f.err as Error | undefined)?.name === 'EncryptionFailedError')
      this.#log.warn({
        retryInMs: this.#backoffMs,
        failures: describeFailures(failures),
        ...(isKeyMismatch ? { hint: 'the connection was dropped during encryption: check that every node uses the same cluster key' } : {}),
      }, 'p2p: no bootstrap peer reachable yet')
    }
    this.#schedule(this.#backoffMs)
  }

  /** Dials one bootstrap address; by address alone when it has no /p2p/ (the id is learned from the handshake). */
  async #dial (addr: Multiaddr): Promise<void> {
    const key = addr.decapsulateCode(P2P_CODE).toString()
    const learned = this.#learnedIds.get(key)
    if (learned !== undefined && this.#o.libp2p.getConnections(peerIdFromString(learned)).length > 0) return
    const bounded = linkSignals([this.#stopped.signal], this.#o.dialTimeoutMs)
    try {
      const connection = await this.#o.libp2p.dial(addr, { signal: bounded.signal })
      const id = connection.remotePeer.toString()
      if (learned !== id) this.#log.info({ addr: key, peer: id }, 'p2p: bootstrap peer connected')
      this.#learnedIds.delete(key)
      this.#learnedIds.set(key, id)
      // bounded: DNS answers change as nodes come and go
      for (const old of this.#learnedIds.keys()) {
        if (this.#learnedIds.size <= LEARNED_IDS_SIZE) break
        this.#learnedIds.delete(old)
      }
    } finally {
      bounded.dispose()
    }
  }

  #ownPort (): number {
    if (this.#o.listenPort !== 0) return this.#o.listenPort
    for (const ma of this.#o.libp2p.getMultiaddrs()) {
      const hp = hostPortOf(ma)
      if (hp !== undefined) return hp.port
    }
    return this.#o.listenPort
  }

  /** Where we can be reached, so that dialing ourselves (a DNS answer that includes us) is skipped. */
  #ownEndpoints (): Set<string> {
    const own = new Set<string>()
    const port = this.#ownPort()
    for (const ma of this.#o.libp2p.getMultiaddrs()) {
      const hp = hostPortOf(ma)
      if (hp !== undefined) own.add(endpointKey(hp.host, hp.port))
    }
    if (this.#o.isWildcardListen) {
      for (const addresses of Object.values(networkInterfaces())) {
        for (const a of addresses ?? []) own.add(endpointKey(a.address, port))
      }
    }
    return own
  }
}

function describeFailures (failures: ReadonlyArray<{ addr: string, err: unknown }>): Array<{ addr: string, error: string }> {
  return failures.slice(0, 10).map(({ addr, err }) => ({
    addr,
    error: err instanceof Error ? `${err.name}: ${err.message}` : String(err),
  }))
}
