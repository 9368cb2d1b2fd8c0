import type { Digest } from '../oci/index.js'

export interface CachedManifest {
  readonly bytes: Buffer
  readonly mediaType: string
}

/**
 * Recently served manifests in memory, least recently used dropped past a byte budget. Manifests are
 * immutable by digest, so an entry never goes stale; it only saves a file read and a JSON parse.
 */
export class ManifestCache {
  readonly #entries = new Map<Digest, CachedManifest>()
  readonly #maxBytes: number
  #bytes = 0

  constructor (maxBytes = 16 * 1024 * 1024) {
    if (!Number.isSafeInteger(maxBytes) || maxBytes < 0) throw new TypeError(`ManifestCache: maxBytes must be a non-negative integer, got ${maxBytes}`)
    this.#maxBytes = maxBytes
  }

  get (digest: Digest): CachedManifest | undefined {
    const e = this.#entries.get(digest)
    if (e !== undefined) {
      this.#entries.delete(digest)
      this.#entries.set(digest, e)
    }
    return e
  }

  set (digest: Digest, entry: CachedManifest): void {
    if (entry.bytes.byteLength > this.#maxBytes) return
    this.delete(digest)
    this.#entries.set(digest, entry)
    this.#bytes += entry.bytes.byteLength
    for (const [d, e] of this.#entries) {
      if (this.#bytes <= this.#maxBytes) break
      this.#entries.delete(d)
      this.#bytes -= e.bytes.byteLength
    }
  }

  delete (digest: Digest): void {
    const e = this.#entries.get(digest)
    if (e === undefined) return
    this.#entries.delete(digest)
    this.#bytes -= e.bytes.byteLength
  }
}
