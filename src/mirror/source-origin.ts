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
