import { createHmac, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto'
import type { PeerMode } from '../server/peer-policy.js'

/** A credential is accepted this far either side of our clock (peers' clocks drift; replays stay short-lived). */
export const PEER_CLOCK_WINDOW_MS = 30_000
/** Nonces remembered at most; past it the oldest are dropped and nothing as old is accepted any more. */
export const MAX_PEER_NONCES = 100_000

export interface PeerCredentialsOptions {
  /** Milliseconds since the epoch; tests move it. */
  readonly now?: () => number
  readonly windowMs?: number
  readonly maxNonces?: number
}

const KEY_INFO = 'flotilla peer http v2'
const NONCE = /^[\w-]{22}$/
const MAC = /^[\w-]{43}$/
const TIMESTAMP = /^\d{1,15}$/

/**
 * What peers present over plain HTTP: `<mode> <unix ms> <nonce> <mac>`, the MAC (HMAC-SHA256 under a key
 * derived from the cluster key) binding mode, method, request target, time and a random nonce. A captured
 * header is good for that one request, once, within the clock window: it cannot be moved to another path or
 * method, nor replayed, nor kept for later. The nonces seen within the window are remembered here.
 */
export class PeerCredentials {
  readonly #key: Buffer
  readonly #now: () => number
  readonly #windowMs: number
  readonly #maxNonces: number
  /** nonce → timestamp it came with, in arrival order. */
  readonly #seen = new Map<string, number>()
  /** Nothing stamped at or before this is accepted: the nonces that old were forgotten. */
  #floor = -Infinity

  constructor (clusterKey: Uint8Array, options: PeerCredentialsOptions = {}) {
    if (clusterKey.byteLength < 16) throw new TypeError('PeerCredentials: the cluster key is too short')
    const windowMs = options.windowMs ?? PEER_CLOCK_WINDOW_MS
    const maxNonces = options.maxNonces ?? MAX_PEER_NONCES
    if (!(windowMs > 0)) throw new TypeError('PeerCredentials: windowMs must be positive')
    if (!Number.isInteger(maxNonces) || maxNonces < 1) throw new TypeError('PeerCredentials: maxNonces must be a positive integer')
    // A key of its own, so the cluster key itself never signs anything on the wire.
    this.#key = Buffer.from(hkdfSync('sha256', clusterKey, '', KEY_INFO, 32))
    this.#now = options.now ?? Date.now
    this.#windowMs = windowMs
    this.#maxNonces = maxNonces
  }

  /** The header value for one request; `target` is the path and query exactly as sent. */
  sign (mode: PeerMode, method: string, target: string): string {
    const timestamp = String(Math.floor(this.#now()))
    const nonce = randomBytes(16).toString('base64url')
    return `${mode} ${timestamp} ${nonce} ${this.#mac(mode, method, target, timestamp, nonce).toString('base64url')}`
  }

  /**
   * The mode of a credential made by `sign` for this method and target, within the clock window, not seen
   * before; undefined otherwise. `isReusable`: it may have been seen (a signed location handed to a client,
   * whose HTTP stack may send it again; it stays bound to its target and window).
   */
  verify (value: string, method: string, target: string, isReusable = false): PeerMode | undefined {
    const [mode, timestamp, nonce, mac, ...rest] = value.split(' ')
    if (rest.length > 0 || (mode !== 'local' && mode !== 'owner')) return undefined
    if (timestamp === undefined || nonce === undefined || mac === undefined) return undefined
    if (!TIMESTAMP.test(timestamp) || !NONCE.test(nonce) || !MAC.test(mac)) return undefined
    if (!timingSafeEqual(Buffer.from(mac, 'base64url'), this.#mac(mode, method, target, timestamp, nonce))) return undefined
    const stamped = Number(timestamp)
    const now = this.#now()
    if (Math.abs(now - stamped) > this.#windowMs) return undefined
    if (isReusable) return mode
    if (stamped <= this.#floor || this.#seen.has(nonce)) return undefined
    // Only key holders get this far, so only they can fill the cache; it is bounded all the same.
    this.#seen.set(nonce, stamped)
    this.#forget(now)
    return mode
  }

  /** Nonces remembered now. */
  get size (): number {
    return this.#seen.size
  }

  #mac (mode: PeerMode, method: string, target: string, timestamp: string, nonce: string): Buffer {
    // Newline-separated: none of the fields can hold one (Node refuses them in a request line).
    return createHmac('sha256', this.#key).update(`${mode}\n${method.toUpperCase()}\n${target}\n${timestamp}\n${nonce}`).digest()
  }

  /**
   * Drops the oldest nonces that are out of the window, and past the bound the oldest anyway. A dropped nonce
   * raises the floor to its timestamp, so its replay stays refused (also if our clock steps back).
   */
  #forget (now: number): void {
    for (const [nonce, stamped] of this.#seen) {
      if (stamped >= now - this.#windowMs && this.#seen.size <= this.#maxNonces) break
      this.#seen.delete(nonce)
      this.#floor = Math.max(this.#floor, stamped)
    }
  }
}
