import type { Readable } from 'node:stream'
import type { Digest } from '../oci/index.js'
import type { BlobInfo, ByteRange } from '../store/blob-store.js'

/** A blob a source holds, and where the node's images hold it (for content restricted to its repositories). */
export interface SourceBlobInfo extends BlobInfo {
  /** `registry/repository` names it is held under (containerd's `containerd.io/distribution.source.*` labels). */
  readonly knownIn?: readonly string[]
}

export interface ResolvedTag {
  readonly digest: Digest
  readonly mediaType: string
  readonly size: number
}

/**
 * A read-only local source of content the mirror consults before peers and upstream: the agent's own store
 * and the node's containerd content store. Every call is bounded by the signal; a source that cannot answer
 * returns undefined (a miss) rather than throwing, unless the failure is worth logging.
 */
export interface ContentSource {
  readonly name: string
  resolveTag (registry: string, repository: string, tag: string, signal?: AbortSignal): Promise<ResolvedTag | undefined>
  stat (digest: Digest, signal?: AbortSignal): Promise<SourceBlobInfo | undefined>
  /** `known`: what a `stat` this caller just made answered; the source may then skip its own lookup. */
  open (digest: Digest, range?: ByteRange, signal?: AbortSignal, known?: BlobInfo): Promise<Readable | undefined>
  /** Content added or removed (for advertising to peers). Returns an unsubscribe function. */
  watch? (listener: (event: ContentEvent) => void): () => void
  close? (): Promise<void>
}

export type ContentEvent =
  | { readonly type: 'blob-added' | 'blob-removed', readonly digest: Digest }
  | { readonly type: 'tag-set' | 'tag-removed', readonly registry: string, readonly repository: string, readonly tag: string, readonly digest?: Digest }
