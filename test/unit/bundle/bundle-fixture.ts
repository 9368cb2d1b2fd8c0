// Small in-memory images for bundle tests: a two-platform index (amd64, arm64) sharing one layer, and a
// single-platform image by digest.
import { createHash, randomBytes } from 'node:crypto'
import { Readable } from 'node:stream'
import { MediaType, type Digest } from '../../../src/oci/index.js'
import type { BundleImage } from '../../../src/bundle/bundle-format.js'

export function digestOf (bytes: Uint8Array): Digest {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}` as Digest
}

export interface Fixture {
  images: BundleImage[]
  blobs: Map<Digest, Buffer>
  index: { digest: Digest, bytes: Buffer }
  amd64: { digest: Digest, config: Digest, layers: Digest[] }
  arm64: { digest: Digest, config: Digest, layers: Digest[] }
  single: { digest: Digest, config: Digest, layers: Digest[] }
  open: (digest: Digest) => Promise<Readable>
  list: () => Array<{ digest: Digest, size: number }>
}

/** `layerBytes` per layer; the chunked `open` stream hands out 64 KiB pieces. */
export function makeFixture (layerBytes = 200_000): Fixture {
  const blobs = new Map<Digest, Buffer>()
  const put = (bytes: Buffer): Digest => {
    const d = digestOf(bytes)
    blobs.set(d, bytes)
    return d
  }
  const desc = (d: Digest, mediaType: string, extra: object = {}): object => ({ mediaType, digest: d, size: blobs.get(d)?.length ?? 0, ...extra })
  const shared = put(randomBytes(layerBytes))
  const image = (arch: string, own: Buffer): { digest: Digest, config: Digest, layers: Digest[] } => {
    const config = put(Buffer.from(JSON.stringify({ architecture: arch, os: 'linux', rootfs: { type: 'layers', diff_ids: [] } })))
    const layer = put(own)
    const manifest = Buffer.from(JSON.stringify({
      schemaVersion: 2, mediaType: MediaType.OciManifest,
      config: desc(config, 'application/vnd.oci.image.config.v1+json'),
      layers: [desc(shared, 'application/vnd.oci.image.layer.v1.tar+gzip'), desc(layer, 'application/vnd.oci.image.layer.v1.tar+gzip')],
    }))
    return { digest: put(manifest), config, layers: [shared, layer] }
  }
  const amd64 = image('amd64', randomBytes(layerBytes))
  const arm64 = image('arm64', randomBytes(layerBytes))
  const indexBytes = Buffer.from(JSON.stringify({
    schemaVersion: 2, mediaType: MediaType.OciIndex,
    manifests: [
      desc(amd64.digest, MediaType.OciManifest, { platform: { os: 'linux', architecture: 'amd64' } }),
      desc(arm64.digest, MediaType.OciManifest, { platform: { os: 'linux', architecture: 'arm64' } }),
    ],
  }))
  const index = { digest: put(indexBytes), bytes: indexBytes }
  const single = image('amd64', randomBytes(1000))
  const images: BundleImage[] = [
    { ref: 'docker.io/library/multi:1.0', digest: index.digest, mediaType: MediaType.OciIndex, size: indexBytes.length, platforms: [] },
    { ref: `registry.example:5000/team/single@${single.digest}`, digest: single.digest, mediaType: MediaType.OciManifest, size: blobs.get(single.digest)?.length ?? 0, platforms: [] },
  ]
  return {
    images, blobs, index, amd64, arm64, single,
    async open (digest) {
      const bytes = blobs.get(digest)
      if (bytes === undefined) throw new Error(`no blob ${digest}`)
      const pieces: Buffer[] = []
      for (let i = 0; i < bytes.length; i += 65536) pieces.push(bytes.subarray(i, i + 65536))
      return Readable.from(pieces)
    },
    list: () => [...blobs].map(([digest, b]) => ({ digest, size: b.length })),
  }
}

export async function readAll (stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const c of stream) chunks.push(c as Buffer)
  return Buffer.concat(chunks)
}
