import type { ErrorCode } from './error-code.js'

export interface FlotillaErrorOptions extends ErrorOptions {
  /** Machine-readable context for the edge (e.g. a blob's size for a 416). */
  readonly detail?: unknown
}

/** Codes after which no other source will do better: a definitive "not there", or bytes that are wrong. */
const FINAL: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  'ERR_UPSTREAM_NOT_FOUND', 'ERR_PEER_NOT_FOUND', 'ERR_DIGEST_MISMATCH', 'ERR_NOT_A_MANIFEST', 'ERR_NOT_IN_SCOPE',
])

/** Codes that say a place cannot be asked right now (so stale content or another source may serve). */
const UNAVAILABLE: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  'ERR_UPSTREAM_UNAVAILABLE', 'ERR_UPSTREAM_TIMEOUT', 'ERR_UPSTREAM_CIRCUIT_OPEN', 'ERR_UPSTREAM_TOO_MANY_REQUESTS',
  'ERR_PEER_UNAVAILABLE', 'ERR_CONTAINERD_UNAVAILABLE', 'ERR_CONTAINERD_TIMEOUT', 'ERR_FIRST_BYTE_TIMEOUT',
])

/**
 * The one base of every error flotilla throws: a stable code from one typed union, and the predicates callers
 * steer by. Subclasses add context fields (a registry, a gRPC method) and may refine a predicate from them.
 */
export class FlotillaError<C extends ErrorCode = ErrorCode> extends Error {
  override readonly name: string = 'FlotillaError'
  readonly detail?: unknown

  constructor (readonly code: C, message: string, options?: FlotillaErrorOptions) {
    super(message, options)
    if (options?.detail !== undefined) this.detail = options.detail
  }

  /** No other source will do better (a definitive miss, or wrong bytes): stop trying. */
  get isFinal (): boolean {
    return FINAL.has(this.code)
  }

  /** The place asked cannot answer now: try another, or serve what is known. */
  get isUnavailable (): boolean {
    return UNAVAILABLE.has(this.code)
  }
}

/** Whether `err` is a FlotillaError with one of these codes (for control flow on errors of unknown type). */
export function hasCode<C extends ErrorCode> (err: unknown, ...codes: C[]): err is FlotillaError<C> {
  return err instanceof FlotillaError && (codes as ErrorCode[]).includes(err.code)
}
