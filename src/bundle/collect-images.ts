import { DEFAULT_MANIFEST_ACCEPT, formatImageReference, includedChildren, formatPlatform, parseDigest, parseImageReference, parseManifest, type Digest, type ParsedManifest, type Platform } from '../oci/index.js'
import { hasCode } from '../errors/flotilla-error.js'
import { digestOf } from '../mirror/manifest-service.js'
import type { BlobStore } from '../store/blob-store.js'
import { keepBlob } from '../store/keep-blob.js'
import { BundleError } from './bundle-error.js'
import type { BundleImage } from './bundle-format.js'
import type { ImageSource } from './image-source.js'

export interface CollectOptions {
  readonly source: ImageSource
  /**
   * The staging cache: a blob store (what the agent keeps its own blobs in), so that what is there is whole and
   * verified, and a save that was interrupted resumes without fetching it again.
   */
  readonly cache: BlobStore
  /** Only these platforms' blobs of an index (the index bytes are kept whole); empty: all. */
  readonly platforms: readonly Platform[]
  /** Carry the referrers (signatures, SBOMs) of each image the registry lists. */
  readonly referrers: boolean
  /** Blobs the cluster already has (`--exclude-from`): needed, not fetched, not shipped. */
  readonly exclude?: ReadonlyMap<string, number>
  readonly signal: AbortSignal
  /** Blobs fetched at once; default 4. */
  readonly concurrency?: number
  readonly onBlob?: (event: { digest: Digest, size: number, isCached: boolean }) => void
}

export interface Collected {
  readonly images: BundleImage[]
  /** What the bundle ships, each once: manifests first, then configs and layers. */
  readonly blobs: Array<{ digest: Digest, size: number }>
  /** What the images need but the bundle leaves out (`--exclude-from`). */
  readonly excluded: Record<string, number>
  readonly bytes: number
}

/**
 * Fetches the images into the staging cache (what is already staged is not fetched again) and lists what a
 * bundle of them ships. Each image is named fully qualified, as containerd names it.
 */
export async function collectImages (refs: readonly string[], o: CollectOptions): Promise<Collected> {
  const manifests = new Map<Digest, number>()
  const blobs = new Map<Digest, { size: number, registry: string, repository: string }>()
  const images: BundleImage[] = []
  const wanted = o.platforms.map(formatPlatform)
  for (const input of refs) {
    const ref = parseImageReference(input)
    const name = formatImageReference(ref.digest === undefined ? ref : { registry: ref.registry, repository: ref.repository, digest: ref.digest })
    const at = { registry: ref.registry, repository: ref.repository }
    const top = await stageManifest(o, at, ref.digest ?? ref.tag ?? 'latest', ref.digest)
    manifests.set(top.digest, top.size)
    const children = top.parsed.kind === 'index' ? includedChildren(top.parsed, wanted) : []
    if (top.parsed.kind === 'index' && children.length === 0) throw new BundleError('ERR_BUNDLE_INCOMPLETE', `${name} has no manifest for ${wanted.join(', ')}`)
    const leaves: ParsedManifest[] = top.parsed.kind === 'index' ? [] : [top.parsed]
    for (const child of children) {
      const m = await stageManifest(o, at, child.digest, child.digest)
      manifests.set(m.digest, m.size)
      leaves.push(m.parsed)
    }
    if (o.referrers) {
      for (const r of await referrersOf(o, at, top.digest)) {
        const m = await stageManifest(o, at, r, r)
        manifests.set(m.digest, m.size)
        leaves.push(m.parsed)
      }
    }
    for (const leaf of leaves) {
      if (leaf.kind !== 'manifest') continue
      for (const d of [leaf.config, ...leaf.layers]) if (!blobs.has(d.digest)) blobs.set(d.digest, { size: d.size, ...at })
    }
    images.push({
      ref: name, digest: top.digest, mediaType: top.parsed.mediaType, size: top.size,
      platforms: top.parsed.kind === 'index' && wanted.length > 0 ? children.filter((c) => c.platform !== undefined).map((c) => formatPlatform(c.platform as Platform)) : [],
    })
  }
  const excluded: Record<string, number> = {}
  const toFetch: Array<[Digest, { size: number, registry: string, repository: string }]> = []
  for (const [digest, b] of blobs) {
    if (o.exclude?.has(digest) === true) excluded[digest] = b.size
    else toFetch.push([digest, b])
  }
  await runLimited(toFetch, o.concurrency ?? 4, async ([digest, b]) => {
    const isCached = await isStaged(o.cache, digest, b.size)
    if (!isCached) await stage(o.cache, digest, b.size, await o.source.blob(b.registry, b.repository, digest, o.signal))
    o.onBlob?.({ digest, size: b.size, isCached })
  })
  const shipped = [...[...manifests].map(([digest, size]) => ({ digest, size })), ...toFetch.map(([digest, b]) => ({ digest, size: b.size }))]
  return { images, blobs: shipped, excluded, bytes: shipped.reduce((n, b) => n + b.size, 0) }
}

/** A manifest by tag or digest, verified (by digest: its bytes hash to it) and staged. */
async function stageManifest (o: CollectOptions, at: { registry: string, repository: string }, reference: string, expected: Digest | undefined): Promise<{ digest: Digest, size: number, parsed: ParsedManifest }> {
  const m = await o.source.manifest(at.registry, at.repository, reference, DEFAULT_MANIFEST_ACCEPT, o.signal)
  const digest = digestOf(m.bytes, expected === undefined ? 'sha256' : parseDigest(expected).algorithm)
  if (expected !== undefined && digest !== expected) throw new BundleError('ERR_BUNDLE_DIGEST', `manifest ${at.registry}/${at.repository}@${expected}: the registry sent bytes hashing to ${digest}`)
  const parsed = parseManifest(m.bytes, m.mediaType)
  if (parsed.kind === 'schema1') throw new BundleError('ERR_BUNDLE_INVALID', `${at.registry}/${at.repository}:${reference} is a schema 1 manifest, which cannot be saved`)
  if (!await isStaged(o.cache, digest, m.bytes.byteLength)) await stage(o.cache, digest, m.bytes.byteLength, [m.bytes])
  return { digest, size: m.bytes.byteLength, parsed }
}

async function isStaged (cache: BlobStore, digest: Digest, size: number): Promise<boolean> {
  return (await cache.stat(digest))?.size === size
}

/** Into the staging cache, verified; bytes that do not match their digest are the bundle's ERR_BUNDLE_DIGEST. */
async function stage (cache: BlobStore, digest: Digest, size: number, body: AsyncIterable<Uint8Array> | Iterable<Uint8Array>): Promise<void> {
  try {
    await keepBlob(cache, digest, size, body)
  } catch (err) {
    if (hasCode(err, 'ERR_DIGEST_MISMATCH')) throw new BundleError('ERR_BUNDLE_DIGEST', `blob ${digest}: ${err.message}`, { cause: err })
    throw err
  }
}

async function referrersOf (o: CollectOptions, at: { registry: string, repository: string }, digest: Digest): Promise<Digest[]> {
  const bytes = await o.source.referrers(at.registry, at.repository, digest, o.signal).catch(() => undefined)
  if (bytes === undefined) return []
  try {
    const index = parseManifest(bytes, 'application/vnd.oci.image.index.v1+json')
    return index.kind === 'index' ? index.manifests.map((d) => d.digest) : []
  } catch {
    return []
  }
}

async function runLimited<T> (items: readonly T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const item = items[next++] as T
      await work(item)
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker))
}
