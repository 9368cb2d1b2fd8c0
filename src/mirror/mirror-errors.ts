import { OciError } from '../oci/index.js'
import { UpstreamError } from '../upstream/upstream-error.js'

/** Turns an upstream failure into the OCI error a client should see for a manifest or blob request. */
export function upstreamToOci (err: unknown, kind: 'manifest' | 'blob' | 'tags', what: string): OciError {
  if (err instanceof OciError) return err
  if (err instanceof UpstreamError) {
    switch (err.code) {
      case 'ERR_UPSTREAM_NOT_FOUND':
        return new OciError(kind === 'blob' ? 'BLOB_UNKNOWN' : kind === 'manifest' ? 'MANIFEST_UNKNOWN' : 'NAME_UNKNOWN', `${what} not found upstream`, undefined, { cause: err })
      case 'ERR_UPSTREAM_UNKNOWN_REGISTRY':
        return new OciError('NAME_UNKNOWN', `${what}: registry ${err.registry} is not configured for pull-through and the content is not held here`, undefined, { cause: err })
      case 'ERR_UPSTREAM_UNAUTHORIZED':
      case 'ERR_UPSTREAM_DENIED':
        // 403 rather than 401: a 401 without a challenge would confuse containerd; it moves on to its next host.
        return new OciError('DENIED', `${what}: upstream ${err.registry} refused access (${err.message})`, undefined, { cause: err })
      case 'ERR_UPSTREAM_TOO_MANY_REQUESTS':
        return new OciError('TOOMANYREQUESTS', `${what}: upstream ${err.registry} is rate limiting`, undefined, { cause: err })
      default:
        return new OciError('UNAVAILABLE', `${what}: upstream ${err.registry} failed: ${err.message}`, undefined, { cause: err })
    }
  }
  if ((err as { code?: string } | undefined)?.code === 'ERR_PEER_NOT_FOUND') {
    return new OciError(kind === 'blob' ? 'BLOB_UNKNOWN' : 'MANIFEST_UNKNOWN', `${what} not found upstream (asked through its owner peer)`, undefined, { cause: err })
  }
  if ((err as { code?: string } | undefined)?.code === 'ERR_DIGEST_MISMATCH') {
    return new OciError('UNAVAILABLE', `${what}: upstream content did not match its digest; nothing was kept`, undefined, { cause: err })
  }
  return new OciError('UNAVAILABLE', `${what}: ${(err as Error | undefined)?.message ?? String(err)}`, undefined, { cause: err })
}
