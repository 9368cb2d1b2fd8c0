/**
 * How many peers a digest's owner streams it to itself. When many nodes pull one blob at the same moment
 * they all ask its owner; past `limit` streams the owner sends the next ones to a peer already fetching it
 * from the owner or from a peer before it (each peer passing it on to at most `limit` more), so the copies
 * spread as a tree instead of all leaving the owner's network card. Pure bookkeeping, no I/O.
 */
export interface FanoutTicket {
  /** `host:port` of the peer to ask instead (with a `local` request), or undefined: serve it here. */
  readonly redirectTo?: string
  /** The stream served here ended. */
  leave (): void
}

interface DigestState {
  /** Streams of it this node serves to peers now. */
  streams: number
  /** Every peer that has it or is getting it through this tree, with how many were sent to it. */
  readonly nodes: Map<string, number>
  lastActive: number
}

export interface OwnerFanoutOptions {
  /** Streams served per digest, and peers sent to each peer of the tree; at least 1. */
  readonly limit: number
  /** How long a digest's tree is remembered after its last stream here ended. */
  readonly lingerMs?: number
  /** Digests remembered at most (oldest forgotten first). */
  readonly maxDigests?: number
  readonly now?: () => number
}

export class OwnerFanout {
  readonly #limit: number
  readonly #lingerMs: number
  readonly #maxDigests: number
  readonly #now: () => number
  readonly #digests = new Map<string, DigestState>()

  constructor (options: OwnerFanoutOptions) {
    if (!Number.isInteger(options.limit) || options.limit < 1) throw new TypeError(`owner fan-out must be a positive integer, got ${options.limit}`)
    this.#limit = options.limit
    this.#lingerMs = options.lingerMs ?? 60_000
    this.#maxDigests = options.maxDigests ?? 10_000
    this.#now = options.now ?? Date.now
  }

  /** `peer` (its `host:port`) asks this owner for `digest`. */
  enter (digest: string, peer: string): FanoutTicket {
    const state = this.#stateOf(digest)
    // A peer of the tree asking again (its source failed) is served here: never sent down its own branch.
    if (state.streams < this.#limit || state.nodes.has(peer)) return this.#serve(state, peer)
    for (const [node, children] of state.nodes) {
      if (children >= this.#limit) continue
      state.nodes.set(node, children + 1)
      state.nodes.set(peer, 0)
      return { redirectTo: node, leave: () => {} }
    }
    return this.#serve(state, peer)
  }

  /**
   * A client another node sent here for `digest` (it passes nothing on): served here while this owner streams
   * the digest to fewer than `limit`, undefined past that (the node must then get it itself, through the tree).
   */
  enterLeaf (digest: string): FanoutTicket | undefined {
    const state = this.#stateOf(digest)
    if (state.streams >= this.#limit) return undefined
    return this.#serve(state, undefined)
  }

  /** Digests with a tree now (for tests and the status page). */
  get size (): number {
    return this.#digests.size
  }

  /** The digest's tree, made if needed, marked active now. */
  #stateOf (digest: string): DigestState {
    this.#forgetIdle()
    let state = this.#digests.get(digest)
    if (state === undefined) {
      state = { streams: 0, nodes: new Map(), lastActive: this.#now() }
      this.#digests.set(digest, state)
    }
    state.lastActive = this.#now()
    return state
  }

  /** A stream served here; `peer`, when it passes the blob on, joins the tree. */
  #serve (state: DigestState, peer: string | undefined): FanoutTicket {
    state.streams++
    if (peer !== undefined && !state.nodes.has(peer)) state.nodes.set(peer, 0)
    let isLeft = false
    return {
      leave: () => {
        if (isLeft) return
        isLeft = true
        state.streams--
        state.lastActive = this.#now()
      },
    }
  }

  #forgetIdle (): void {
    const now = this.#now()
    for (const [digest, state] of this.#digests) {
      if ((state.streams === 0 && now - state.lastActive > this.#lingerMs) || this.#digests.size > this.#maxDigests) this.#digests.delete(digest)
    }
  }
}
