import type { Digest } from '../oci/index.js'

/**
 * Digests kept whatever the budget, each by one or more reasons (`precache:web`, ...): a blob stays pinned
 * until its last reason is withdrawn. A pin may come before the blob (pin, then pull). In memory: whoever
 * pins (the pre-cache) pins again at start.
 */
export class BlobPins {
  readonly #reasons = new Map<Digest, Set<string>>()

  pin (digest: Digest, reason: string): void {
    const reasons = this.#reasons.get(digest)
    if (reasons === undefined) this.#reasons.set(digest, new Set([reason]))
    else reasons.add(reason)
  }

  /** True when the digest is no longer pinned at all. */
  unpin (digest: Digest, reason: string): boolean {
    const reasons = this.#reasons.get(digest)
    reasons?.delete(reason)
    if (reasons?.size === 0) this.#reasons.delete(digest)
    return !this.#reasons.has(digest)
  }

  isPinned (digest: Digest): boolean {
    return this.#reasons.has(digest)
  }
}
