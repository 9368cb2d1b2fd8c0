import type { Readable } from 'node:stream'
import type { RequestResult } from '../metrics/metrics.js'
import type { Digest, ManifestRef } from '../oci/index.js'
import type { ByteRange } from '../store/blob-store.js'
import type { BlobSourceAttempt, SourceOrigin } from './blob-source.js'

export interface MirrorRequest {
  readonly registry: string
  readonly repository: string
  readonly signal: AbortSignal
  /** A peer asked (loop guard): answer only from what this node holds or is downloading. */
  readonly localOnly?: boolean
  /** Do not ask peers (a peer asked us as the owner of a digest: we may go upstream, not back to peers). */
  readonly noPeers?: boolean
  /** Ask the upstream about a tag even while its record is fresh (the pre-cache's refresh). */
  readonly revalidate?: boolean
  /** `host:port` the client reached this node at (its Host header): where a place it is sent to may send it back. */
  readonly clientHost?: string
}

export interface ManifestResult {
  readonly digest: Digest
  readonly mediaType: string
  readonly size: number
  readonly body: Buffer
  readonly source: RequestResult
  /** Seconds since the tag was last confirmed upstream, when it was served stale because the upstream failed. */
  readonly staleSeconds?: number
  /** A tag's answer: when the upstream last confirmed it (epoch ms); absent when only this node or a peer vouches for it. */
  readonly confirmedAt?: number
}

export interface BlobResult {
  /** Total size, when known before the body (always, except for an upstream that sends no length). */
  readonly size: number | undefined
  readonly source: RequestResult
  open (range?: ByteRange): Promise<Readable>
}

/** A blob this node's client is sent to get elsewhere (a 307 to a peer that holds it). */
export interface BlobElsewhere {
  /** Absolute URL, with whatever credential the other place needs. */
  readonly sendTo: string
}

/** Where else content may be found: peers (p2p) plug in here. */
export interface RemoteContent {
  /**
   * Attempts for a blob found within a tight budget: `first` before the upstream, `last` after it. With
   * `maySend`, `sendTo` instead when the client can get it from a holder itself (then the attempts are empty).
   */
  blobSources (req: MirrorRequest, digest: Digest, maySend?: boolean): Promise<{ first: BlobSourceAttempt[], last: BlobSourceAttempt[], sendTo?: string }>
  /** A manifest from a peer that holds it; `isPatient` after the upstream failed (a longer lookup budget). */
  manifest (req: MirrorRequest, ref: ManifestRef, accept: string, isPatient: boolean): Promise<{ bytes: Buffer, mediaType: string } | undefined>
  /** Bytes these sources delivered for `digest` did not verify: stop asking them for it. */
  distrust (digest: Digest, origins: readonly SourceOrigin[]): void
}

/** Peers to ask for `req`: none when a peer asked us (loop guard) or asked us as an owner. */
export function remoteFor (req: MirrorRequest, remote: RemoteContent | undefined): RemoteContent | undefined {
  return req.localOnly === true || req.noPeers === true ? undefined : remote
}
