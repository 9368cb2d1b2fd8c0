import type { Readable } from 'node:stream'

/** Where the bytes of a download come from. */
export type SourceOrigin =
  | { readonly kind: 'upstream', readonly registry: string }
  /** A peer: one that holds the blob, a digest's owner, or the peer an owner sent us on to. */
  | { readonly kind: 'peer', readonly address: string, readonly role: 'holder' | 'owner' | 'relay' }
  /** Peers not known before asking (found later, or the faster of two): the answer names the one that served. */
  | { readonly kind: 'peers' }

/** For logs and metrics labels: `upstream:docker.io`, `peer:10.0.0.2:5000`, `peer:10.0.0.3:5000:owner`. */
export function describeOrigin (origin: SourceOrigin): string {
  switch (origin.kind) {
    case 'upstream': return `upstream:${origin.registry}`
    case 'peers': return 'peers'
    case 'peer': return origin.role === 'holder' ? `peer:${origin.address}` : `peer:${origin.address}:${origin.role}`
  }
}

/** What a source answered: the body from the offset asked, and who answered when the attempt could not say before. */
export interface OpenedSource {
  readonly body: Readable
  readonly totalSize?: number
  /** The source that answered, when it is not the attempt's own origin (a hedge, a relay, a peer found later). */
  readonly origin?: SourceOrigin
}

/** One place the bytes can come from, asked for everything from `offset` on. */
export interface BlobSourceAttempt {
  readonly origin: SourceOrigin
  open (offset: number, signal: AbortSignal): Promise<OpenedSource>
}
