import { OciError, parseDigest, parseManifestRef, truncate, type Digest, type ManifestRef } from '../oci/index.js'

export type ApiRoute =
  | { readonly kind: 'base' }
  | { readonly kind: 'manifest', readonly name: string, readonly ref: ManifestRef }
  | { readonly kind: 'blob', readonly name: string, readonly digest: Digest }
  | { readonly kind: 'upload', readonly name: string }
  | { readonly kind: 'tags', readonly name: string }
  | { readonly kind: 'referrers', readonly name: string, readonly digest: Digest }

/**
 * Maps a `/v2/...` path to a route; the name is returned raw (validated by the caller, which knows the
 * registry). `pathname` is decoded and free of dot segments (parseRequestTarget): it is not decoded again.
 * Throws NAME_UNKNOWN for paths outside the API and the parse errors of refs and digests.
 */
export function parseApiPath (pathname: string): ApiRoute {
  if (pathname === '/v2/' || pathname === '/v2') return { kind: 'base' }
  const unknown = (): OciError => new OciError('NAME_UNKNOWN', `no such endpoint ${JSON.stringify(truncate(pathname))}`)
  if (!pathname.startsWith('/v2/')) throw unknown()
  const rest = pathname.slice(4)
  let m = /^(.+)\/blobs\/uploads(?:\/.*)?$/.exec(rest)
  if (m !== null) return { kind: 'upload', name: m[1] as string }
  m = /^(.+)\/manifests\/([^/]+)$/.exec(rest)
  if (m !== null) return { kind: 'manifest', name: m[1] as string, ref: parseManifestRef(m[2] as string) }
  m = /^(.+)\/blobs\/([^/]+)$/.exec(rest)
  if (m !== null) return { kind: 'blob', name: m[1] as string, digest: parseDigest(m[2] as string).digest }
  m = /^(.+)\/tags\/list$/.exec(rest)
  if (m !== null) return { kind: 'tags', name: m[1] as string }
  m = /^(.+)\/referrers\/([^/]+)$/.exec(rest)
  if (m !== null) return { kind: 'referrers', name: m[1] as string, digest: parseDigest(m[2] as string).digest }
  throw unknown()
}
