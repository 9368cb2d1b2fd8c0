export const MediaType = {
  OciManifest: 'application/vnd.oci.image.manifest.v1+json',
  OciIndex: 'application/vnd.oci.image.index.v1+json',
  DockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  DockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  DockerManifestV1Signed: 'application/vnd.docker.distribution.manifest.v1+prettyjws',
  OctetStream: 'application/octet-stream',
} as const

export const INDEX_MEDIA_TYPES: ReadonlySet<string> = new Set([MediaType.OciIndex, MediaType.DockerManifestList])
export const MANIFEST_MEDIA_TYPES: ReadonlySet<string> = new Set([
  MediaType.OciManifest, MediaType.OciIndex, MediaType.DockerManifest, MediaType.DockerManifestList,
  MediaType.DockerManifestV1Signed, 'application/vnd.docker.distribution.manifest.v1+json',
])

/** The Accept header sent upstream when the client sent none: every manifest kind we can serve. */
export const DEFAULT_MANIFEST_ACCEPT = [
  MediaType.OciIndex, MediaType.DockerManifestList, MediaType.OciManifest, MediaType.DockerManifest,
].join(', ')

/** Whether an Accept header admits a media type (no header, or a wildcard, admits everything). */
export function accepts (accept: string | undefined, mediaType: string): boolean {
  if (accept === undefined || accept.trim() === '') return true
  for (const part of accept.split(',')) {
    const type = part.split(';')[0]?.trim().toLowerCase()
    if (type === undefined || type === '') continue
    if (type === '*/*' || type === mediaType || (type === 'application/*' && mediaType.startsWith('application/'))) return true
  }
  return false
}

/**
 * Whether an Accept header admits indexes and image manifests of both families: what a tag resolves to for
 * such a client is what the registry holds, not a per-client rewrite (one platform's manifest, schema1).
 */
export function acceptsEveryManifestKind (accept: string | undefined): boolean {
  return [MediaType.OciIndex, MediaType.DockerManifestList, MediaType.OciManifest, MediaType.DockerManifest].every((t) => accepts(accept, t))
}

/**
 * The Accept to send upstream for a client's Accept. Faithful, except that a client accepting anything
 * (`*\/*` or no header) gets the manifest types spelled out: Distribution answers 404 for an OCI manifest
 * unless its media type is named.
 */
export function upstreamManifestAccept (accept: string | undefined): string {
  const types = (accept ?? '').split(',').map((p) => p.split(';')[0]?.trim() ?? '').filter((t) => t !== '')
  if (types.length === 0) return DEFAULT_MANIFEST_ACCEPT
  if (types.every((t) => t === '*/*' || t === 'application/*')) return `${DEFAULT_MANIFEST_ACCEPT}, ${accept ?? ''}`
  return accept ?? DEFAULT_MANIFEST_ACCEPT
}
