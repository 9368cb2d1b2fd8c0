import type { UpstreamErrorCode } from '../errors/error-code.js'
import { FlotillaError } from '../errors/flotilla-error.js'

export type { UpstreamErrorCode } from '../errors/error-code.js'

/** A failed call to an upstream registry, with the registry and the HTTP status it answered (if any). */
export class UpstreamError extends FlotillaError<UpstreamErrorCode> {
  override readonly name = 'UpstreamError'
  constructor (
    code: UpstreamErrorCode,
    message: string,
    readonly registry: string,
    readonly status?: number,
    options?: ErrorOptions,
  ) {
    super(code, message, options)
  }

  /** Whether the upstream may be considered unreachable (so stale content may be served); a 5xx counts. */
  override get isUnavailable (): boolean {
    return super.isUnavailable || (this.code === 'ERR_UPSTREAM_STATUS' && (this.status ?? 0) >= 500)
  }
}
