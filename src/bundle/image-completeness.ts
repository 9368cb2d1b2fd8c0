import { includedChildren, INDEX_MEDIA_TYPES, parseManifest, type Digest, type ParsedManifest } from '../oci/index.js'
import { BundleError } from './bundle-error.js'

export interface CompletenessImage {
  digest: Digest
  mediaType: string
  /** 'linux/amd64' …; [] = every child of an index. */
  platforms: readonly string[]
}

/**
 * What an image lacks (empty = complete): walks index → manifests (only the included platforms' children when
 * `platforms` is non-empty; the index blob itself must be there) → config and layers. A manifest that cannot be read
 * is missing; its children are then unknown and not listed. ERR_BUNDLE_INVALID for a malformed manifest,
 * ERR_BUNDLE_INCOMPLETE when an index has no manifest for a platform the image claims.
 */
export async function missingContent (
  image: CompletenessImage,
  has: (digest: Digest) => Promise<boolean>,
  readManifest: (digest: Digest) => Promise<Buffer | undefined>,
): Promise<Digest[]> {
  const missing: Digest[] = []
  const seen = new Set<string>()

  const check = async (digest: Digest): Promise<boolean> => {
    if (seen.has(digest)) return true
    seen.add(digest)
    if (await has(digest)) return true
    missing.push(digest)
    return false
  }

  const walk = async (digest: Digest, mediaType: string, platforms: readonly string[]): Promise<void> => {
    if (!await check(digest)) return
    const bytes = await readManifest(digest)
    if (bytes === undefined) {
      missing.push(digest)
      return
    }
    let m: ParsedManifest
    try {
      m = parseManifest(bytes, mediaType)
    } catch (err) {
      throw new BundleError('ERR_BUNDLE_INVALID', `manifest ${digest} is malformed: ${(err as Error).message}`, { cause: err })
    }
    if (m.kind === 'index') {
      const children = includedChildren(m, platforms)
      for (const p of platforms) {
        if (includedChildren(m, [p]).length === 0) throw new BundleError('ERR_BUNDLE_INCOMPLETE', `image ${digest} has no manifest for ${p}`)
      }
      for (const child of children) {
        // A nested index is carried whole: the platform choice applies to the top index only.
        await walk(child.digest, child.mediaType, INDEX_MEDIA_TYPES.has(child.mediaType) ? [] : platforms)
      }
    } else if (m.kind === 'manifest') {
      for (const d of [m.config, ...m.layers]) await check(d.digest)
    }
  }

  await walk(image.digest, image.mediaType, image.platforms)
  return missing
}
