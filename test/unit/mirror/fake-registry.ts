import { createHash } from 'node:crypto'
import { Readable } from 'node:stream'
import { setTimeout as sleep } from 'node:timers/promises'
import { accepts, MediaType, type Digest } from '../../../src/oci/index.js'
import type { BlobBody, ManifestBody, ManifestHead, PassThroughResponse, Upstream } from '../../../src/upstream/upstream.js'
import { UpstreamError } from '../../../src/upstream/upstream-error.js'

export function sha256 (bytes: Uint8Array): Digest {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}` as Digest
}

export interface FakeImage {
  readonly indexDigest: Digest
  readonly index: Buffer
  /** Per architecture: the manifest and its config. */
  readonly platforms: ReadonlyMap<string, { digest: Digest, bytes: Buffer, config: Buffer, configDigest: Digest }>
  readonly layer: Buffer
  readonly layerDigest: Digest
}

/** A Docker manifest list for amd64 and arm64 sharing one layer: what Distribution serves for a multi-arch tag. */
export function fakeImage (): FakeImage {
  const layer = Buffer.from('layer bytes shared by both platforms')
  const layerDigest = sha256(layer)
  const platforms = new Map<string, { digest: Digest, bytes: Buffer, config: Buffer, configDigest: Digest }>()
  for (const architecture of ['amd64', 'arm64']) {
    const config = Buffer.from(JSON.stringify({ architecture, os: 'linux', rootfs: { type: 'layers', diff_ids: [] } }))
    const configDigest = sha256(config)
    const bytes = Buffer.from(JSON.stringify({
      schemaVersion: 2, mediaType: MediaType.DockerManifest,
      config: { mediaType: 'application/vnd.docker.container.image.v1+json', digest: configDigest, size: config.byteLength },
      layers: [{ mediaType: 'application/vnd.docker.image.rootfs.diff.tar.gzip', digest: layerDigest, size: layer.byteLength }],
    }))
    platforms.set(architecture, { digest: sha256(bytes), bytes, config, configDigest })
  }
  const index = Buffer.from(JSON.stringify({
    schemaVersion: 2, mediaType: MediaType.DockerManifestList,
    manifests: [...platforms].map(([architecture, p]) => ({ mediaType: MediaType.DockerManifest, digest: p.digest, size: p.bytes.byteLength, platform: { os: 'linux', architecture } })),
  }))
  return { indexDigest: sha256(index), index, platforms, layer, layerDigest }
}

/**
 * An in-memory registry holding one multi-arch tag, answering as Distribution does: a client that does not
 * accept manifest lists gets the amd64 manifest for the tag. Counts calls; can fail or hang on demand.
 */
export class FakeRegistry implements Upstream {
  readonly image = fakeImage()
  readonly calls: string[] = []
  /** Every call throws ERR_UPSTREAM_UNAVAILABLE. */
  isDown = false
  /** Every call waits this long (or until its signal aborts) before answering. */
  delayMs = 0
  readonly #blobs = new Map<Digest, Buffer>()
  /** Repositories holding the image (blobs and manifests by digest); the tag is in `repository` only. */
  readonly repositories: Set<string>

  constructor (readonly repository = 'team/app', readonly tag = 'v1') {
    this.repositories = new Set([repository])
    const { image } = this
    this.#blobs.set(image.indexDigest, image.index)
    this.#blobs.set(image.layerDigest, image.layer)
    for (const p of image.platforms.values()) {
      this.#blobs.set(p.digest, p.bytes)
      this.#blobs.set(p.configDigest, p.config)
    }
  }

  has (): boolean { return true }

  async #enter (what: string, signal?: AbortSignal): Promise<void> {
    this.calls.push(what)
    if (this.delayMs > 0) await sleep(this.delayMs, undefined, signal === undefined ? {} : { signal })
    if (this.isDown) throw new UpstreamError('ERR_UPSTREAM_UNAVAILABLE', 'connection refused', 'fake')
  }

  #resolve (repository: string, reference: string, accept: string): { bytes: Buffer, mediaType: string } {
    const { image } = this
    if (!this.repositories.has(repository)) throw new UpstreamError('ERR_UPSTREAM_NOT_FOUND', 'no such repository', 'fake', 404)
    if (reference === this.tag && repository === this.repository) {
      if (accepts(accept, MediaType.DockerManifestList)) return { bytes: image.index, mediaType: MediaType.DockerManifestList }
      const amd64 = image.platforms.get('amd64') as { bytes: Buffer }
      return { bytes: amd64.bytes, mediaType: MediaType.DockerManifest }
    }
    const bytes = this.#blobs.get(reference as Digest)
    if (bytes === undefined) throw new UpstreamError('ERR_UPSTREAM_NOT_FOUND', 'manifest unknown', 'fake', 404)
    return { bytes, mediaType: reference === image.indexDigest ? MediaType.DockerManifestList : MediaType.DockerManifest }
  }

  async headManifest (_registry: string, repository: string, reference: string, accept: string, signal?: AbortSignal): Promise<ManifestHead> {
    await this.#enter(`HEAD manifest ${repository}:${reference}`, signal)
    const m = this.#resolve(repository, reference, accept)
    return { digest: sha256(m.bytes), mediaType: m.mediaType, size: m.bytes.byteLength }
  }

  async getManifest (_registry: string, repository: string, reference: string, accept: string, signal?: AbortSignal): Promise<ManifestBody> {
    await this.#enter(`GET manifest ${repository}:${reference}`, signal)
    const m = this.#resolve(repository, reference, accept)
    return { digest: sha256(m.bytes), mediaType: m.mediaType, size: m.bytes.byteLength, bytes: m.bytes }
  }

  async getBlob (_registry: string, repository: string, digest: Digest, offset = 0, signal?: AbortSignal): Promise<BlobBody> {
    await this.#enter(`GET blob ${repository}@${digest}`, signal)
    const bytes = this.repositories.has(repository) ? this.#blobs.get(digest) : undefined
    if (bytes === undefined) throw new UpstreamError('ERR_UPSTREAM_NOT_FOUND', 'blob unknown', 'fake', 404)
    return { status: offset === 0 ? 200 : 206, length: bytes.byteLength - offset, totalSize: bytes.byteLength, body: Readable.from([bytes.subarray(offset)]) }
  }

  async headBlob (_registry: string, repository: string, digest: Digest, signal?: AbortSignal): Promise<{ size: number | undefined }> {
    await this.#enter(`HEAD blob ${repository}@${digest}`, signal)
    const bytes = this.repositories.has(repository) ? this.#blobs.get(digest) : undefined
    if (bytes === undefined) throw new UpstreamError('ERR_UPSTREAM_NOT_FOUND', 'blob unknown', 'fake', 404)
    return { size: bytes.byteLength }
  }

  async passThrough (): Promise<PassThroughResponse> {
    throw new Error('not used in these tests')
  }

  async close (): Promise<void> {}
}
