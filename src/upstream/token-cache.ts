export interface TokenCacheOptions {
  /** Lifetime assumed when the token endpoint omits `expires_in` (the distribution token spec says 60 s). */
  readonly defaultTtlSeconds?: number
  /** Tokens are dropped this long before they expire, so one is never sent as it runs out. */
  readonly marginMs?: number
  /** Bound on cached tokens (one per registry and repository pulled). */
  readonly maxEntries?: number
  readonly now?: () => number
}

const DEFAULTS = { defaultTtlSeconds: 60, marginMs: 10_000, maxEntries: 10_000 } as const

interface Entry {
  readonly token: string
  readonly expiresAt: number
}

/** Bearer tokens per (registry, scope), kept until shortly before they expire. */
export class TokenCache {
  readonly #defaultTtlSeconds: number
  readonly #marginMs: number
  readonly #maxEntries: number
  readonly #now: () => number
  readonly #entries = new Map<string, Entry>()

  constructor (options: TokenCacheOptions = {}) {
    const { defaultTtlSeconds, marginMs, maxEntries } = { ...DEFAULTS, ...options }
    if (!Number.isFinite(defaultTtlSeconds) || defaultTtlSeconds <= 0) throw new TypeError(`defaultTtlSeconds must be positive, got ${String(defaultTtlSeconds)}`)
    if (!Number.isFinite(marginMs) || marginMs < 0) throw new TypeError(`marginMs must be non-negative, got ${String(marginMs)}`)
    if (!Number.isSafeInteger(maxEntries) || maxEntries < 1) throw new TypeError(`maxEntries must be a positive integer, got ${String(maxEntries)}`)
    this.#defaultTtlSeconds = defaultTtlSeconds
    this.#marginMs = marginMs
    this.#maxEntries = maxEntries
    this.#now = options.now ?? Date.now
  }

  get size (): number {
    return this.#entries.size
  }

  get (registry: string, scope: string): string | undefined {
    const key = cacheKey(registry, scope)
    const entry = this.#entries.get(key)
    if (entry === undefined) return undefined
    if (entry.expiresAt <= this.#now()) {
      this.#entries.delete(key)
      return undefined
    }
    return entry.token
  }

  /** `expiresInSeconds` as the token endpoint sent it; absent or nonsensical means the default. */
  set (registry: string, scope: string, token: string, expiresInSeconds?: number): void {
    const seconds = expiresInSeconds !== undefined && Number.isFinite(expiresInSeconds) && expiresInSeconds > 0
      ? expiresInSeconds
      : this.#defaultTtlSeconds
    const ttlMs = seconds * 1000
    // A short-lived token keeps at least half its life rather than being dropped on arrival.
    const expiresAt = this.#now() + ttlMs - Math.min(this.#marginMs, ttlMs / 2)
    const key = cacheKey(registry, scope)
    this.#entries.delete(key)
    this.#entries.set(key, { token, expiresAt })
    if (this.#entries.size > this.#maxEntries) this.#evict()
  }

  delete (registry: string, scope: string): void {
    this.#entries.delete(cacheKey(registry, scope))
  }

  #evict (): void {
    const now = this.#now()
    for (const [key, entry] of this.#entries) if (entry.expiresAt <= now) this.#entries.delete(key)
    // Still full: drop the oldest insertions (Map iterates in insertion order).
    for (const key of this.#entries.keys()) {
      if (this.#entries.size <= this.#maxEntries) break
      this.#entries.delete(key)
    }
  }
}

function cacheKey (registry: string, scope: string): string {
  return `${registry}\n${scope}`
}
