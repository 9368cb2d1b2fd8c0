import type { Readable } from 'node:stream'
import { FlotillaError } from '../errors/flotilla-error.js'
import { parseDigest, parseManifest, type Digest, type ManifestRef } from '../oci/index.js'
import type { BlobStore } from '../store/blob-store.js'
import { keepBlob } from '../store/keep-blob.js'
import type { TagIndex } from '../store/tag-index.js'
import { digestOf, type ManifestService } from './manifest-service.js'
import type { MirrorRequest } from './mirror-types.js'

export interface LoadServiceOptions {
  readonly store: BlobStore
  readonly tags: TagIndex
  readonly manifests: ManifestService
  readonly now: () => number
  /** Told of tags this node can now serve, to advertise them to peers. */
  readonly announce?: (keys: readonly string[]) => void
}

/**
 * Content given to this node rather than fetched (an air-gap bundle loaded with `flotilla load`): blobs are
 * verified against their digest before they are kept; a manifest is kept only when what it needs is held
 * (an index may lack the platforms a bundle left out), and only then does its tag resolve, offline too.
 */
export class LoadService {
  readonly #o: LoadServiceOptions

  constructor (options: LoadServiceOptions) {
    this.#o = options
  }

  /** Keeps a blob from `body`; one already held is not written again (its body is drained). */
  async putBlob (digest: Digest, size: number | undefined, body: Readable): Promise<{ isNew: boolean }> {
    if (await this.#o.store.stat(digest) !== undefined) {
      for await (const chunk of body) void chunk
      return { isNew: false }
    }
    await keepBlob(this.#o.store, digest, size, body)
    return { isNew: true }
  }

  /**
   * Keeps a manifest or index and, for a tag, points the tag at it. `ref` by digest must be the bytes' digest.
   * A manifest whose config or layers are not held is refused (ERR_NOT_HELD naming the first one missing).
   */
  async putManifest (req: MirrorRequest, ref: ManifestRef, bytes: Buffer, contentType: string | undefined): Promise<{ digest: Digest, mediaType: string }> {
    const parsed = parseManifest(bytes, contentType)
    const algorithm = ref.kind === 'digest' ? parseDigest(ref.digest).algorithm : 'sha256'
    const digest = digestOf(bytes, algorithm)
    if (ref.kind === 'digest' && ref.digest !== digest) throw new FlotillaError('ERR_DIGEST_MISMATCH', `manifest bytes hash to ${digest}, not ${ref.digest}`)
    if (parsed.kind === 'manifest') {
      for (const d of [parsed.config, ...parsed.layers]) {
        if (await this.#o.store.stat(d.digest) === undefined) throw new FlotillaError('ERR_NOT_HELD', `manifest ${digest} needs blob ${d.digest}, which is not held here: load it first`)
      }
    } else if (parsed.kind === 'index') {
      let held = 0
      for (const m of parsed.manifests) if (await this.#o.store.stat(m.digest) !== undefined) held++
      if (held === 0 && parsed.manifests.length > 0) throw new FlotillaError('ERR_NOT_HELD', `index ${digest} has none of its manifests held here: load them first`)
    }
    await this.#o.manifests.keep(req, digest, bytes, parsed.mediaType)
    if (ref.kind === 'tag') {
      await this.#o.tags.set(req.registry, req.repository, ref.tag, { digest, mediaType: parsed.mediaType, size: bytes.byteLength, fetchedAt: this.#o.now() })
      this.#o.announce?.([`${req.registry}/${req.repository}:${ref.tag}`])
    }
    return { digest, mediaType: parsed.mediaType }
  }
}
