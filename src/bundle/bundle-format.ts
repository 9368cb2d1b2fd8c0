// The shape of a flotilla bundle: a plain tar that is an OCI image layout (oci-layout, index.json, blobs/<alg>/<hex>),
// a Docker `manifest.json`, and flotilla's own `flotilla-bundle.json`. Pure: no I/O.
import { z } from 'zod'
import {
  isDigest, MediaType, parseDigest, parseImageReference, parseManifest, parsePlatform,
  type Digest, type ParsedManifest,
} from '../oci/index.js'
import { BundleError } from './bundle-error.js'

export const OCI_LAYOUT_NAME = 'oci-layout'
export const INDEX_NAME = 'index.json'
export const BUNDLE_INFO_NAME = 'flotilla-bundle.json'
export const DOCKER_MANIFEST_NAME = 'manifest.json'
export const DOCKER_REPOSITORIES_NAME = 'repositories'
/** Bound on every non-blob entry and on every manifest read while writing. */
export const MAX_METADATA_BYTES = 4 * 1024 * 1024

/** containerd's `ctr images import` names an image after this annotation (it wins over ref.name). */
export const ANNOTATION_IMAGE_NAME = 'io.containerd.image.name'
/** skopeo's `oci-archive:FILE:REF` picks the index entry whose ref.name equals REF. */
export const ANNOTATION_REF_NAME = 'org.opencontainers.image.ref.name'
/** buildx attestation manifests point at the platform manifest they describe with this annotation. */

export const OCI_LAYOUT_JSON: Buffer = Buffer.from('{"imageLayoutVersion":"1.0.0"}')

export interface BundleImage {
  /** Fully qualified, normalised: docker.io/library/busybox:1.36, or name@sha256:…. */
  ref: string
  /** The top index or manifest, original bytes. */
  digest: Digest
  mediaType: string
  size: number
  /** 'linux/amd64' included; [] = all of it. */
  platforms: string[]
}

export interface BundlePart {
  /** 1-based. */
  index: number
  count: number
  /** Shared by every part of one save. */
  id: string
}

export interface BundleInfo {
  version: 1
  createdAt: string
  images: BundleImage[]
  /** Blobs the images need that this file does not carry (--exclude-from, or other parts), digest → size. */
  excluded: Record<string, number>
  part?: BundlePart
}

const digestSchema = z.string().refine(isDigest, { message: 'not a digest' }).transform((s) => s as Digest)
const sizeSchema = z.number().int().nonnegative()

const bundleImageSchema = z.object({
  ref: z.string().min(1),
  digest: digestSchema,
  mediaType: z.string().min(1),
  size: sizeSchema,
  platforms: z.array(z.string().refine((p) => isPlatform(p), { message: 'not os/arch[/variant]' })),
})

const bundleInfoSchema = z.object({
  version: z.literal(1),
  createdAt: z.string().min(1),
  images: z.array(bundleImageSchema),
  excluded: z.record(z.string().refine(isDigest, { message: 'not a digest' }), sizeSchema),
  part: z.object({ index: z.number().int().min(1), count: z.number().int().min(1), id: z.string().min(1) })
    .refine((p) => p.index <= p.count, { message: 'part index exceeds count' })
    .optional(),
})

function isPlatform (s: string): boolean {
  try {
    parsePlatform(s)
    return true
  } catch {
    return false
  }
}

function parseJson (bytes: Uint8Array, name: string): unknown {
  try {
    return JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'))
  } catch {
    throw new BundleError('ERR_BUNDLE_INVALID', `${name} is not valid JSON`)
  }
}

export function serializeBundleInfo (info: BundleInfo): Buffer {
  return Buffer.from(JSON.stringify(info))
}

/** Parses `flotilla-bundle.json`; ERR_BUNDLE_INVALID naming the first bad field. */
export function parseBundleInfo (bytes: Uint8Array): BundleInfo {
  const result = bundleInfoSchema.safeParse(parseJson(bytes, BUNDLE_INFO_NAME))
  if (!result.success) {
    const issue = result.error.issues[0]
    const where = issue === undefined ? '' : `${issue.path.join('.') || '(root)'}: ${issue.message}`
    throw new BundleError('ERR_BUNDLE_INVALID', `${BUNDLE_INFO_NAME} is malformed: ${where}`)
  }
  const { part, ...rest } = result.data
  return { ...rest, excluded: rest.excluded, ...(part === undefined ? {} : { part }) }
}

/** Checks `oci-layout`: image layout version 1.0.0, the only one there is. */
export function parseOciLayout (bytes: Uint8Array): void {
  const doc = parseJson(bytes, OCI_LAYOUT_NAME)
  const version = typeof doc === 'object' && doc !== null ? (doc as Record<string, unknown>).imageLayoutVersion : undefined
  if (version !== '1.0.0') throw new BundleError('ERR_BUNDLE_INVALID', `${OCI_LAYOUT_NAME}: unsupported imageLayoutVersion ${JSON.stringify(version)}`)
}

/** The layout's `index.json`: one descriptor per image, named for containerd and skopeo alike. */
export function ociIndexJson (images: readonly BundleImage[]): Buffer {
  return Buffer.from(JSON.stringify({
    schemaVersion: 2,
    mediaType: MediaType.OciIndex,
    manifests: images.map((i) => ({
      mediaType: i.mediaType,
      digest: i.digest,
      size: i.size,
      annotations: { [ANNOTATION_IMAGE_NAME]: i.ref, [ANNOTATION_REF_NAME]: i.ref },
    })),
  }))
}

export interface IndexImage {
  /** io.containerd.image.name, else org.opencontainers.image.ref.name (possibly a bare tag in foreign archives). */
  ref?: string
  digest: Digest
  mediaType: string
  size: number
}

/** Parses a layout's `index.json` (ours or a foreign one); ERR_BUNDLE_INVALID when it is not an index. */
export function parseOciIndexJson (bytes: Uint8Array): { images: IndexImage[] } {
  let parsed: ParsedManifest
  try {
    parsed = parseManifest(bytes)
  } catch (err) {
    throw new BundleError('ERR_BUNDLE_INVALID', `${INDEX_NAME} is malformed: ${(err as Error).message}`, { cause: err })
  }
  if (parsed.kind !== 'index') throw new BundleError('ERR_BUNDLE_INVALID', `${INDEX_NAME} is not an image index`)
  return {
    images: parsed.manifests.map((d) => {
      const ref = d.annotations?.[ANNOTATION_IMAGE_NAME] ?? d.annotations?.[ANNOTATION_REF_NAME]
      return { ...(typeof ref === 'string' && ref !== '' ? { ref } : {}), digest: d.digest, mediaType: d.mediaType, size: d.size }
    }),
  }
}

/** `blobs/<alg>/<hex>` */
export function blobPathOf (digest: Digest): string {
  const { algorithm, hex } = parseDigest(digest)
  return `blobs/${algorithm}/${hex}`
}

/** The digest a tar entry name stands for (`blobs/<alg>/<hex>`, `./` allowed), or undefined. */
export function digestOfBlobPath (name: string): Digest | undefined {
  const m = /^(?:\.\/)*blobs\/([a-z0-9]+)\/([a-f0-9]+)$/.exec(name)
  if (m === null) return undefined
  const candidate = `${m[1] ?? ''}:${m[2] ?? ''}`
  return isDigest(candidate) ? candidate as Digest : undefined
}

/** Entry names as tar tools write them: `./index.json` and `index.json` are the same file. */
export function normalizeEntryName (name: string): string {
  let n = name
  while (n.startsWith('./')) n = n.slice(2)
  while (n.startsWith('/')) n = n.slice(1)
  return n
}

export interface DockerManifestEntry {
  ref: string
  /** A single-platform image manifest. */
  manifest: ParsedManifest
}

/**
 * Docker `manifest.json`: one entry per image, its config and layers as the layout's blob paths. An image by
 * digest has no RepoTags. The tag keeps the fully qualified name (`registry/repo:tag`).
 */
export function dockerManifestJson (entries: readonly DockerManifestEntry[]): Buffer {
  return Buffer.from(JSON.stringify(entries.map(({ ref, manifest }) => {
    if (manifest.kind !== 'manifest') throw new TypeError(`dockerManifestJson: ${ref} needs a single-platform image manifest, got ${manifest.kind}`)
    return { Config: blobPathOf(manifest.config.digest), RepoTags: repoTagsOf(ref), Layers: manifest.layers.map((l) => blobPathOf(l.digest)) }
  })))
}

function repoTagsOf (ref: string): string[] {
  const parsed = parseImageReference(ref)
  return parsed.tag === undefined ? [] : [`${parsed.registry}/${parsed.repository}:${parsed.tag}`]
}

/** `<base>.parts.json`: the parts of one split save, each with its size and sha256 (hex, as sha256sum prints it). */
export interface BundlePartsManifest {
  version: 1
  id: string
  parts: Array<{ file: string, bytes: number, sha256: string }>
}

const partsManifestSchema = z.object({
  version: z.literal(1),
  id: z.string().min(1),
  parts: z.array(z.object({
    file: z.string().min(1).refine((f) => !f.includes('/') && f !== '..', { message: 'must be a file name in the same directory' }),
    bytes: sizeSchema,
    sha256: z.string().regex(/^[a-f0-9]{64}$/),
  })).min(1),
})

export function serializePartsManifest (m: BundlePartsManifest): Buffer {
  return Buffer.from(`${JSON.stringify(m, null, 2)}\n`)
}

export function parsePartsManifest (bytes: Uint8Array, name = 'parts manifest'): BundlePartsManifest {
  const result = partsManifestSchema.safeParse(parseJson(bytes, name))
  if (!result.success) {
    const issue = result.error.issues[0]
    throw new BundleError('ERR_BUNDLE_INVALID', `${name} is malformed: ${issue === undefined ? '' : `${issue.path.join('.') || '(root)'}: ${issue.message}`}`)
  }
  return result.data
}

const EXTENSIONS = ['.tar.zst', '.tar'] as const

/** Splits a bundle file name into base and extension (`.tar.zst`, `.tar`, or '' for anything else). */
export function splitBundleName (file: string): { base: string, ext: string } {
  const ext = EXTENSIONS.find((e) => file.endsWith(e)) ?? ''
  return { base: file.slice(0, file.length - ext.length), ext }
}

export function isZstdName (file: string): boolean {
  return file.endsWith('.tar.zst')
}

/** `<base>.part-001-of-003.tar` (the number width grows with the count). */
export function partFileName (file: string, index: number, count: number): string {
  const { base, ext } = splitBundleName(file)
  const width = Math.max(3, String(count).length)
  return `${base}.part-${String(index).padStart(width, '0')}-of-${String(count).padStart(width, '0')}${ext}`
}

export function partsManifestName (file: string): string {
  return `${splitBundleName(file).base}.parts.json`
}
