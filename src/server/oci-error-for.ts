import { FlotillaError } from '../errors/flotilla-error.js'
import type { RequestKind } from '../metrics/metrics.js'
import { OciError, type OciErrorCode } from '../oci/index.js'

/** What "not there" is called for each kind of request. */
const UNKNOWN: Readonly<Record<RequestKind, OciErrorCode>> = {
  blob: 'BLOB_UNKNOWN', manifest: 'MANIFEST_UNKNOWN', referrers: 'MANIFEST_UNKNOWN', tags: 'NAME_UNKNOWN', other: 'NAME_UNKNOWN',
}

/**
 * The one table from domain errors to the OCI errors clients see, by the kind of request that failed. OCI
 * errors (malformed names, digests, ranges: the protocol's own) pass as they are; anything else is not an
 * answer the API gives (undefined: the edge answers 500 with a request id).
 */
export function ociErrorFor (err: unknown, kind: RequestKind): OciError | undefined {
  if (err instanceof OciError) return err
  if (!(err instanceof FlotillaError)) return undefined
  const as = (code: OciErrorCode): OciError => new OciError(code, err.message, err.detail, { cause: err })
  switch (err.code) {
    case 'ERR_UPSTREAM_NOT_FOUND':
    case 'ERR_PEER_NOT_FOUND':
    case 'ERR_NOT_HELD':
    case 'ERR_NOT_IN_SCOPE':
      return as(UNKNOWN[kind])
    case 'ERR_NOT_A_MANIFEST':
      return as('MANIFEST_UNKNOWN')
    case 'ERR_REGISTRY_NOT_CONFIGURED':
    case 'ERR_UPSTREAM_UNKNOWN_REGISTRY':
      return as('NAME_UNKNOWN')
    // 403 rather than 401: a 401 without a challenge would confuse containerd; it moves on to its next host.
    case 'ERR_UPSTREAM_UNAUTHORIZED':
    case 'ERR_UPSTREAM_DENIED':
      return as('DENIED')
    case 'ERR_UPSTREAM_TOO_MANY_REQUESTS':
      return as('TOOMANYREQUESTS')
    default:
      // The upstream, a peer or a download failed, or was too slow: 503, so the client falls back.
      return as('UNAVAILABLE')
  }
}
