export type UpstreamErrorCode =
  | 'ERR_UPSTREAM_NOT_FOUND'
  | 'ERR_UPSTREAM_UNAUTHORIZED'
  | 'ERR_UPSTREAM_DENIED'
  | 'ERR_UPSTREAM_STATUS'
  | 'ERR_UPSTREAM_UNAVAILABLE'
  | 'ERR_UPSTREAM_TIMEOUT'
  | 'ERR_UPSTREAM_CIRCUIT_OPEN'
  | 'ERR_UPSTREAM_TOO_MANY_REQUESTS'
  | 'ERR_UPSTREAM_UNKNOWN_REGISTRY'
  | 'ERR_UPSTREAM_INVALID_RESPONSE'

export class UpstreamError extends Error {
  override readonly name = 'UpstreamError'
  constructor (
    readonly code: UpstreamErrorCode,
    message: string,
    readonly registry: string,
    readonly status?: number,
    options?: ErrorOptions,
  ) {
    super(message, options)
  }

  /** Whether the upstream may be considered unreachable (so stale content may be served). */
  get isUnavailable (): boolean {
    return this.code === 'ERR_UPSTREAM_UNAVAILABLE' || this.code === 'ERR_UPSTREAM_TIMEOUT' ||
      this.code === 'ERR_UPSTREAM_CIRCUIT_OPEN' || this.code === 'ERR_UPSTREAM_TOO_MANY_REQUESTS' ||
      (this.code === 'ERR_UPSTREAM_STATUS' && (this.status ?? 0) >= 500)
  }
}
