import { parseDigest, type Digest } from './digest.js'
import { INDEX_MEDIA_TYPES, MediaType } from './media-types.js'
import { OciError } from './oci-error.js'
import { parsePlatform, platformMatches, type Platform } from './platform.js'

/** Registries commonly cap manifests at 4 MiB; anything larger is refused before it is parsed. */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024

export interface Descriptor {
  readonly mediaType: string
  readonly digest: Digest
  readonly size: number
  readonly platform?: Platform
  readonly annotations?: Readonly<Record<string, string>>
}

export type ParsedManifest =
  | { readonly kind: 'index', readonly mediaType: string, readonly manifests: readonly Descriptor[] }
  | { readonly kind: 'manifest', readonly mediaType: string, readonly config: Descriptor, readonly layers: readonly Descriptor[] }
  | { readonly kind: 'schema1', readonly mediaType: string }

function invalid (message: string): OciError {
  return new OciError('MANIFEST_INVALID', message)
}

function isObject (v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

function parseDescriptor (v: unknown, where: string): Descriptor {
  if (!isObject(v)) throw invalid(`${where}: descriptor must be an object`)
  const { mediaType, digest, size, platform, annotations } = v
  if (typeof mediaType !== 'string' || mediaType === '') throw invalid(`${where}: mediaType missing`)
  if (typeof digest !== 'string') throw invalid(`${where}: digest missing`)
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) throw invalid(`${where}: size must be a non-negative integer`)
  let parsedDigest: Digest
  try {
    parsedDigest = parseDigest(digest).digest
  } catch (err) {
    throw invalid(`${where}: ${(err as Error).message}`)
  }
  let p: Platform | undefined
  if (platform !== undefined) {
    if (!isObject(platform) || typeof platform.os !== 'string' || typeof platform.architecture !== 'string') {
      throw invalid(`${where}: platform needs os and architecture`)
    }
    p = { os: platform.os, architecture: platform.architecture, ...(typeof platform.variant === 'string' ? { variant: platform.variant } : {}) }
  }
  return {
    mediaType, digest: parsedDigest, size,
    ...(p === undefined ? {} : { platform: p }),
    ...(isObject(annotations) ? { annotations: annotations as Record<string, string> } : {}),
  }
}

/**
 * Parses and validates a manifest or index. `contentType` is the media type the bytes were served with;
 * when the document names its own mediaType the two must agree.
 */
export function parseManifest (bytes: Uint8Array, contentType?: string): ParsedManifest {
  if (bytes.byteLength > MAX_MANIFEST_BYTES) throw invalid(`manifest is ${bytes.byteLength} bytes; the limit is ${MAX_MANIFEST_BYTES}`)
  let doc: unknown
  try {
    doc = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'))
  } catch {
    throw invalid('manifest is not valid JSON')
  }
  if (!isObject(doc)) throw invalid('manifest must be a JSON object')
  const ct = contentType?.split(';')[0]?.trim()
  if (doc.schemaVersion === 1) return { kind: 'schema1', mediaType: ct ?? MediaType.DockerManifestV1Signed }
  if (doc.schemaVersion !== 2) throw invalid('schemaVersion must be 2')
  const declared = typeof doc.mediaType === 'string' ? doc.mediaType : undefined
  if (declared !== undefined && ct !== undefined && ct !== '' && ct !== declared && ct !== MediaType.OctetStream) {
    throw invalid(`mediaType ${declared} does not match Content-Type ${ct}`)
  }
  const isIndex = Array.isArray(doc.manifests)
  const mediaType = declared ?? (ct !== undefined && ct !== '' && ct !== MediaType.OctetStream ? ct : (isIndex ? MediaType.OciIndex : MediaType.OciManifest))
  if (isIndex || INDEX_MEDIA_TYPES.has(mediaType)) {
    if (!Array.isArray(doc.manifests)) throw invalid('index must have a manifests array')
    return { kind: 'index', mediaType, manifests: doc.manifests.map((d, i) => parseDescriptor(d, `manifests[${i}]`)) }
  }
  if (!Array.isArray(doc.layers)) throw invalid('manifest must have a layers array')
  return {
    kind: 'manifest',
    mediaType,
    config: parseDescriptor(doc.config, 'config'),
    layers: doc.layers.map((d, i) => parseDescriptor(d, `layers[${i}]`)),
  }
}

/** Every digest a manifest points at (children of an index, or config and layers). */
export function referencedDescriptors (m: ParsedManifest): readonly Descriptor[] {
  if (m.kind === 'index') return m.manifests
  if (m.kind === 'manifest') return [m.config, ...m.layers]
  return []
}

/** buildx marks an attestation manifest with the digest of the platform manifest it describes. */
const ANNOTATION_DOCKER_REFERENCE_DIGEST = 'vnd.docker.reference.digest'

/**
 * The children of an index that serve `platforms` (`os/arch[/variant]`) ([] = all): the matching platform manifests, plus
 * attestation manifests that point at one of them.
 */
export function includedChildren (index: ParsedManifest, platforms: readonly string[]): Descriptor[] {
  if (index.kind !== 'index') return []
  if (platforms.length === 0) return [...index.manifests]
  const wanted = platforms.map(parsePlatform)
  const matching = index.manifests.filter((d) => d.platform !== undefined && wanted.some((w) => d.platform !== undefined && platformMatches(w, d.platform)))
  const chosen = new Set<string>(matching.map((d) => d.digest))
  return index.manifests.filter((d) => chosen.has(d.digest) ||
    (d.annotations?.[ANNOTATION_DOCKER_REFERENCE_DIGEST] !== undefined && chosen.has(d.annotations[ANNOTATION_DOCKER_REFERENCE_DIGEST])))
}
