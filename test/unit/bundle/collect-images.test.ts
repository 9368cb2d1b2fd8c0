import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { Readable } from 'node:stream'
import { after, before, describe, it } from 'node:test'
import { collectImages } from '../../../src/bundle/collect-images.js'
import type { ImageSource } from '../../../src/bundle/image-source.js'
import { FsBlobStore } from '../../../src/store/fs-blob-store.js'
import type { Digest } from '../../../src/oci/index.js'
import { makeTempDir, type TempDir } from '../../helpers/temp-dir.js'

const OCI_INDEX = 'application/vnd.oci.image.index.v1+json'
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json'

function digestOf (bytes: Buffer): Digest {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}` as Digest
}

/** An in-memory registry: blobs and manifests by digest, tags, referrers; counts blob fetches. */
class MemorySource implements ImageSource {
  readonly blobs = new Map<string, Buffer>()
  readonly manifests = new Map<string, { bytes: Buffer, mediaType: string }>()
  readonly tags = new Map<string, string>()
  readonly referrersOf = new Map<string, Buffer>()
  readonly fetched: string[] = []

  blob$ (bytes: Buffer): { mediaType: string, digest: Digest, size: number } {
    const digest = digestOf(bytes)
    this.blobs.set(digest, bytes)
    return { mediaType: 'application/octet-stream', digest, size: bytes.byteLength }
  }

  manifest$ (doc: object, mediaType: string): { mediaType: string, digest: Digest, size: number } {
    const bytes = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType, ...doc }))
    const digest = digestOf(bytes)
    this.manifests.set(digest, { bytes, mediaType })
    return { mediaType, digest, size: bytes.byteLength }
  }

  image$ (arch: string, layer: Buffer): { mediaType: string, digest: Digest, size: number, platform: { os: string, architecture: string } } {
    const config = this.blob$(Buffer.from(`{"architecture":"${arch}","os":"linux"}`))
    return { ...this.manifest$({ config, layers: [this.blob$(layer)] }, OCI_MANIFEST), platform: { os: 'linux', architecture: arch } }
  }

  async manifest (registry: string, repository: string, reference: string): Promise<{ bytes: Buffer, digest: Digest, mediaType: string, size: number }> {
    const digest = reference.startsWith('sha256:') ? reference : this.tags.get(`${registry}/${repository}:${reference}`)
    const m = digest === undefined ? undefined : this.manifests.get(digest)
    if (m === undefined) throw new Error(`${registry}/${repository}:${reference}: not found`)
    return { bytes: m.bytes, digest: digestOf(m.bytes), mediaType: m.mediaType, size: m.bytes.byteLength }
  }

  async blob (_registry: string, _repository: string, digest: Digest): Promise<Readable> {
    this.fetched.push(digest)
    const b = this.blobs.get(digest)
    if (b === undefined) throw new Error(`${digest}: not found`)
    return Readable.from([b])
  }

  async referrers (_registry: string, _repository: string, digest: Digest): Promise<Buffer | undefined> {
    return this.referrersOf.get(digest)
  }

  async close (): Promise<void> {}
}

describe('collectImages', () => {
  let tmp: TempDir
  const source = new MemorySource()
  const amd = source.image$('amd64', Buffer.from('amd64 layer'))
  const arm = source.image$('arm64', Buffer.from('arm64 layer'))
  const index = source.manifest$({ manifests: [amd, arm] }, OCI_INDEX)
  const signature = source.manifest$({ artifactType: 'application/vnd.example.sig', config: source.blob$(Buffer.from('{}')), layers: [source.blob$(Buffer.from('signature'))], subject: index }, OCI_MANIFEST)
  source.tags.set('registry.example.com/team/web:v1', index.digest)
  source.referrersOf.set(index.digest, Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [signature] })))

  before(async () => { tmp = await makeTempDir('collect-images') })
  after(async () => { await tmp.cleanup() })

  it('one platform of an index: the index kept whole, only that platform\'s blobs shipped, referrers carried', async () => {
    const cache = await FsBlobStore.open(`${tmp.path}/a`)
    const c = await collectImages(['registry.example.com/team/web:v1'], {
      source, cache, platforms: [{ os: 'linux', architecture: 'arm64' }], referrers: true, signal: AbortSignal.timeout(5000),
    })
    assert.deepEqual(c.images, [{ ref: 'registry.example.com/team/web:v1', digest: index.digest, mediaType: OCI_INDEX, size: index.size, platforms: ['linux/arm64'] }])
    const shipped = new Set(c.blobs.map((b) => b.digest))
    assert.ok(shipped.has(index.digest) && shipped.has(arm.digest) && shipped.has(signature.digest))
    assert.ok(!shipped.has(amd.digest), 'the amd64 manifest is shipped')
    assert.equal(digestOf(await cache.read(index.digest) ?? Buffer.alloc(0)), index.digest, 'the index bytes are the registry\'s')
    for (const b of c.blobs) assert.equal((await cache.stat(b.digest))?.size, b.size, `${b.digest} staged`)
  })

  it('--no-referrers leaves them out; a second collect fetches nothing again; excluded blobs are listed, not fetched', async () => {
    const cache = await FsBlobStore.open(`${tmp.path}/b`)
    const first = await collectImages(['registry.example.com/team/web:v1'], { source, cache, platforms: [], referrers: false, signal: AbortSignal.timeout(5000) })
    assert.ok(!first.blobs.some((b) => b.digest === signature.digest))
    const fetchedBefore = source.fetched.length
    const events: boolean[] = []
    await collectImages(['registry.example.com/team/web:v1'], { source, cache, platforms: [], referrers: false, signal: AbortSignal.timeout(5000), onBlob: (e) => events.push(e.isCached) })
    assert.equal(source.fetched.length, fetchedBefore, 'fetched again from the registry')
    assert.ok(events.length > 0 && events.every((x) => x))
    const layer = (await source.manifest('registry.example.com', 'team/web', arm.digest)).bytes
    const armLayer = (JSON.parse(layer.toString()) as { layers: Array<{ digest: string, size: number }> }).layers[0]
    assert.ok(armLayer !== undefined)
    const excluded = await collectImages(['registry.example.com/team/web:v1'], {
      source, cache: await FsBlobStore.open(`${tmp.path}/c`), platforms: [], referrers: false, signal: AbortSignal.timeout(5000),
      exclude: new Map([[armLayer.digest, armLayer.size]]),
    })
    assert.deepEqual(excluded.excluded, { [armLayer.digest]: armLayer.size })
    assert.ok(!excluded.blobs.some((b) => b.digest === armLayer.digest))
  })

  it('a platform the index lacks, and bytes that do not match their digest, are clear errors', async () => {
    const cache = await FsBlobStore.open(`${tmp.path}/d`)
    await assert.rejects(collectImages(['registry.example.com/team/web:v1'], { source, cache, platforms: [{ os: 'linux', architecture: 's390x' }], referrers: false, signal: AbortSignal.timeout(5000) }),
      { code: 'ERR_BUNDLE_INCOMPLETE', message: /has no manifest for linux\/s390x/ })
    const liar = new MemorySource()
    const img = liar.image$('amd64', Buffer.from('layer'))
    liar.tags.set('registry.example.com/x/y:v1', img.digest)
    const config = [...liar.blobs.keys()][0] as string
    liar.blobs.set(config, Buffer.from('not the config'))
    await assert.rejects(collectImages(['registry.example.com/x/y:v1'], { source: liar, cache, platforms: [], referrers: false, signal: AbortSignal.timeout(5000) }), { code: 'ERR_BUNDLE_DIGEST' })
    assert.equal(await cache.stat(config as Digest), undefined)
  })
})
