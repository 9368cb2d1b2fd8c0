import { createCipheriv, createHash } from 'node:crypto'
import { createWriteStream } from 'node:fs'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'

export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json'
export const OCI_CONFIG = 'application/vnd.oci.image.config.v1+json'
export const OCI_LAYER = 'application/vnd.oci.image.layer.v1.tar'

/** What containerd sends when it resolves a reference. */
export const MANIFEST_ACCEPT = [
  OCI_MANIFEST, 'application/vnd.oci.image.index.v1+json',
  'application/vnd.docker.distribution.manifest.v2+json', 'application/vnd.docker.distribution.manifest.list.v2+json',
].join(', ')

export interface BlobFile {
  readonly path: string
  readonly digest: string
  readonly size: number
}

export interface BenchImage {
  readonly repo: string
  readonly tag: string
  readonly layer: BlobFile
  readonly config: { readonly digest: string, readonly bytes: Buffer }
  readonly manifest: { readonly digest: string, readonly bytes: Buffer }
}

const CHUNK = 1 << 20

export function sha256 (bytes: Uint8Array): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`
}

/**
 * Writes `size` incompressible, reproducible bytes (AES-128-CTR keystream seeded from `seed`) to `path`,
 * hashing them on the way: only one 1 MiB chunk is in memory at a time.
 */
export async function writeSeededBlob (path: string, size: number, seed: string): Promise<BlobFile> {
  if (!Number.isSafeInteger(size) || size <= 0) throw new TypeError(`writeSeededBlob: size must be a positive integer, got ${size}`)
  const key = createHash('sha256').update(seed).digest()
  const cipher = createCipheriv('aes-128-ctr', key.subarray(0, 16), key.subarray(16, 32))
  const hash = createHash('sha256')
  const zeros = Buffer.alloc(CHUNK)
  async function * chunks (): AsyncGenerator<Buffer> {
    for (let written = 0; written < size; written += CHUNK) {
      const chunk = cipher.update(zeros.subarray(0, Math.min(CHUNK, size - written)))
      hash.update(chunk)
      yield chunk
    }
  }
  await pipeline(Readable.from(chunks()), createWriteStream(path, { highWaterMark: CHUNK }))
  return { path, digest: `sha256:${hash.digest('hex')}`, size }
}

/** A one-layer OCI image around `layer`: a config blob and a manifest, as bytes ready to push. */
export function buildBenchImage (layer: BlobFile, repo: string, tag: string): BenchImage {
  const configBytes = Buffer.from(JSON.stringify({
    architecture: 'amd64', os: 'linux', config: {}, rootfs: { type: 'layers', diff_ids: [layer.digest] },
  }))
  const config = { digest: sha256(configBytes), bytes: configBytes }
  const manifestBytes = Buffer.from(JSON.stringify({
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: { mediaType: OCI_CONFIG, digest: config.digest, size: configBytes.byteLength },
    layers: [{ mediaType: OCI_LAYER, digest: layer.digest, size: layer.size }],
  }))
  return { repo, tag, layer, config, manifest: { digest: sha256(manifestBytes), bytes: manifestBytes } }
}
