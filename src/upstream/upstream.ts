import type { Readable } from 'node:stream'
import type { Digest } from '../oci/index.js'

export interface ManifestHead {
  readonly digest: Digest
  readonly mediaType: string
  readonly size: number
  readonly etag?: string
}

export interface ManifestBody extends ManifestHead {
  readonly bytes: Buffer
}

export interface BlobBody {
  /** 200 for a whole blob, 206 for a range. */
  readonly status: 200 | 206
  /** Length of this body in bytes (the range length for 206), when the upstream said. */
  readonly length?: number
  /** Total size of the blob, when known (Content-Length on 200, Content-Range on 206). */
  readonly totalSize?: number
  readonly body: Readable
}

export interface PassThroughResponse {
  readonly status: number
  readonly headers: Readonly<Record<string, string>>
  readonly body: Buffer
}

/**
 * The upstream registries, addressed by their normalized name (docker.io, ghcr.io, 127.0.0.1:5001).
 * Errors are UpstreamError with a stable code; a 404 upstream is ERR_UPSTREAM_NOT_FOUND.
 */
export interface Upstream {
  has (registry: string): boolean
  headManifest (registry: string, repository: string, reference: string, accept: string, signal?: AbortSignal): Promise<ManifestHead>
  getManifest (registry: string, repository: string, reference: string, accept: string, signal?: AbortSignal): Promise<ManifestBody>
  /** `offset` asks for the bytes from there on (Range: bytes=offset-). */
  getBlob (registry: string, repository: string, digest: Digest, offset?: number, signal?: AbortSignal): Promise<BlobBody>
  /** Whether the repository has the blob (a 404 is ERR_UPSTREAM_NOT_FOUND), without its bytes. */
  headBlob (registry: string, repository: string, digest: Digest, signal?: AbortSignal): Promise<{ size: number | undefined }>
  /** GET of any other read path under /v2/<repository>/ (tags/list, referrers/<digest>), answered as the upstream did. */
  passThrough (registry: string, repository: string, path: string, query: string, accept: string | undefined, signal?: AbortSignal): Promise<PassThroughResponse>
  close (): Promise<void>
}
