import { Agent, request } from 'undici'
import type { Digest } from '../oci/index.js'
import { CircuitBreaker, type CircuitState } from '../upstream/circuit-breaker.js'
import type { Region } from './region-table.js'

export interface ExistenceCheckerOptions {
  /** How long a region is known to have a blob. */
  readonly hitTtlMs: number
  /** How long a region is known to lack one (shorter: it may fetch it meanwhile). */
  readonly missTtlMs: number
  /** Bound on one HEAD at a region. */
  readonly timeoutMs: number
  /** Most (region, digest) answers remembered; the least recently used go first. */
  readonly maxEntries?: number
  readonly now?: () => number
}

/** What a region said of a blob: it has it, it lacks it, or it could not say (down, slow, circuit open). */
export type Existence = 'present' | 'absent' | 'unknown'

/**
 * Whether a region holds a blob, asked with a bounded HEAD at its `blobBase`: single-flighted per (region,
 * digest), remembered positively for `hitTtlMs` and negatively for `missTtlMs` in a bounded LRU. A region whose
 * checks fail is passed over (its circuit opens) rather than slowing clients down.
 */
export class ExistenceChecker {
  readonly #o: Required<ExistenceCheckerOptions>
  readonly #known = new Map<string, { exists: boolean, until: number }>()
  readonly #flights = new Map<string, Promise<Existence>>()
  readonly #breakers = new Map<string, CircuitBreaker>()
  readonly #agent: Agent

  constructor (options: ExistenceCheckerOptions) {
    this.#o = { maxEntries: 100_000, now: Date.now, ...options }
    this.#agent = new Agent({ connect: { timeout: options.timeoutMs }, headersTimeout: options.timeoutMs, bodyTimeout: options.timeoutMs })
  }

  async check (region: Region, repository: string, digest: Digest): Promise<Existence> {
    // A region that stopped answering gets no clients, whatever it was known to hold.
    if (this.#breakers.get(region.name)?.state === 'open') return 'unknown'
    const key = `${region.name}\0${digest}`
    const known = this.#known.get(key)
    const now = this.#o.now()
    if (known !== undefined && known.until > now) {
      // Refreshes its place in the LRU.
      this.#known.delete(key)
      this.#known.set(key, known)
      return known.exists ? 'present' : 'absent'
    }
    const running = this.#flights.get(key)
    if (running !== undefined) return await running
    const flight = this.#ask(region, repository, digest, key).finally(() => { this.#flights.delete(key) })
    this.#flights.set(key, flight)
    return await flight
  }

  /** Each region's circuit and last failure, for the status page. */
  health (region: Region): { circuit: CircuitState, lastError: string | null } {
    const b = this.#breakers.get(region.name)
    return { circuit: b?.state ?? 'closed', lastError: b?.lastFailure?.message ?? null }
  }

  async close (): Promise<void> {
    await this.#agent.close()
  }

  async #ask (region: Region, repository: string, digest: Digest, key: string): Promise<Existence> {
    let breaker = this.#breakers.get(region.name)
    if (breaker === undefined) this.#breakers.set(region.name, breaker = new CircuitBreaker({ failureThreshold: 3, openMs: 10_000 }))
    if (!breaker.tryAcquire()) return 'unknown'
    try {
      const res = await request(`${region.blobBase}/v2/${repository}/blobs/${digest}`, {
        method: 'HEAD', dispatcher: this.#agent, signal: AbortSignal.timeout(this.#o.timeoutMs),
      })
      res.body.resume()
      if (res.statusCode === 200 || res.statusCode === 404) {
        breaker.recordSuccess()
        const exists = res.statusCode === 200
        this.#remember(key, exists)
        return exists ? 'present' : 'absent'
      }
      breaker.recordFailure(new Error(`HEAD answered ${res.statusCode}`))
      return 'unknown'
    } catch (err) {
      breaker.recordFailure(err instanceof Error ? err : new Error(String(err)))
      return 'unknown'
    }
  }

  #remember (key: string, exists: boolean): void {
    this.#known.delete(key)
    this.#known.set(key, { exists, until: this.#o.now() + (exists ? this.#o.hitTtlMs : this.#o.missTtlMs) })
    while (this.#known.size > this.#o.maxEntries) {
      const oldest = this.#known.keys().next().value
      if (oldest === undefined) break
      this.#known.delete(oldest)
    }
  }
}
