import type { Libp2p } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'
import type { Logger } from 'pino'
import { hostPortOf } from './bootstrap-target.js'
import { linkSignals } from './channel.js'

export interface ClusterMeshOptions {
  readonly libp2p: Libp2p
  readonly selfId: string
  /** Flotilla peers connected now (the router's set, read live). */
  readonly connected: ReadonlySet<string>
  readonly logger: Logger
  readonly dialTimeoutMs: number
  /** Aborted when the router closes. */
  readonly shutdown: AbortSignal
}

/** Listed peers we could not dial are not dialed again before this; also how long a failure is remembered. */
const RETRY_MS = 5_000
const MEET_CONCURRENCY = 8
const ADDRESSES_PER_PEER = 4

/**
 * A small cluster's full mesh: peers tell each other whom they are connected to, and each node dials the
 * ones it lacks (a few at a time, failures remembered a few seconds).
 */
export class ClusterMesh {
  readonly #o: ClusterMeshOptions
  /** Peers being dialed because another node listed them. */
  readonly #meeting = new Set<string>()
  /** Listed peers we could not dial, and when. */
  readonly #dialFailedAt = new Map<string, number>()

  constructor (options: ClusterMeshOptions) {
    this.#o = options
  }

  /** A peer connected: a failed dial to it is forgotten. */
  connected (id: string): void {
    this.#dialFailedAt.delete(id)
  }

  /** Multiaddrs (with `/p2p/<id>`) of the flotilla peers connected now, loopback ones only when a peer has no other. */
  async peerAddresses (): Promise<string[]> {
    const out: string[] = []
    for (const id of this.#o.connected) {
      const peer = await this.#o.libp2p.peerStore.get(peerIdFromString(id)).catch(() => undefined)
      if (peer === undefined) continue
      const all = peer.addresses.map(({ multiaddr: ma }) => ma).filter((ma) => hostPortOf(ma) !== undefined)
      const outside = all.filter((ma) => !isLoopback(ma))
      for (const ma of (outside.length > 0 ? outside : all).slice(0, ADDRESSES_PER_PEER)) {
        out.push(ma.getComponents().some((c) => c.name === 'p2p') ? ma.toString() : `${ma.toString()}/p2p/${id}`)
      }
    }
    return out
  }

  /** Dials the listed nodes we are not connected to (a few at a time); failures only cost a debug line. */
  meet (addresses: readonly string[]): void {
    const { connected, shutdown } = this.#o
    for (const [id, at] of this.#dialFailedAt) if (Date.now() - at >= RETRY_MS) this.#dialFailedAt.delete(id)
    const byPeer = new Map<string, Multiaddr[]>()
    for (const text of addresses) {
      let ma: Multiaddr
      try {
        ma = multiaddr(text)
      } catch {
        continue
      }
      const id = ma.getComponents().findLast((c) => c.name === 'p2p')?.value
      if (id === undefined || id === this.#o.selfId || connected.has(id) || this.#meeting.has(id)) continue
      byPeer.set(id, [...(byPeer.get(id) ?? []), ma])
    }
    for (const [id, mas] of byPeer) {
      if (shutdown.aborted || this.#meeting.size >= MEET_CONCURRENCY) return
      if (this.#dialFailedAt.has(id)) continue
      this.#meeting.add(id)
      const bounded = linkSignals([shutdown], this.#o.dialTimeoutMs)
      this.#o.libp2p.dial(mas, { signal: bounded.signal })
        .catch((err: unknown) => {
          if (shutdown.aborted) return
          this.#dialFailedAt.set(id, Date.now())
          this.#o.logger.debug({ err, peer: id }, 'p2p: could not dial a peer another node listed')
        })
        .finally(() => {
          bounded.dispose()
          this.#meeting.delete(id)
        })
    }
  }
}

function isLoopback (ma: Multiaddr): boolean {
  const host = hostPortOf(ma)?.host
  return host !== undefined && (host.startsWith('127.') || host === '::1')
}
