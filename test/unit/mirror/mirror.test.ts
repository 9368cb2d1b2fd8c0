// The resolve engine on in-memory adapters: what a tag resolves to, what is served as a manifest, how long a
// client waits on a slow upstream, stale-if-error, and one download shared by concurrent clients.
import assert from 'node:assert/strict'
import { afterEach, describe, test } from 'node:test'
import { Readable } from 'node:stream'
import { pino } from 'pino'
import { Metrics } from '../../../src/metrics/metrics.js'
import { Mirror, type MirrorOptions, type MirrorRequest } from '../../../src/mirror/mirror.js'
import { MAX_MANIFEST_BYTES, MediaType, type Digest, type OciErrorCode } from '../../../src/oci/index.js'
import { ociErrorFor } from '../../../src/server/oci-error-for.js'
import { MemoryBlobStore } from '../../../src/store/memory-blob-store.js'
import { MemoryTagIndex } from '../../../src/store/memory-tag-index.js'
import { FileScopeIndex } from '../../../src/store/file-scope-index.js'
import { makeTempDir } from '../../helpers/temp-dir.js'
import { collect } from '../store/blob-store-conformance.js'
import { FakeRegistry, sha256 } from './fake-registry.js'

/** What containerd sends when it resolves a tag. */
const CONTAINERD_ACCEPT = `${MediaType.DockerManifest}, ${MediaType.DockerManifestList}, ${MediaType.OciManifest}, ${MediaType.OciIndex}, */*`

const mirrors: Mirror[] = []
afterEach(() => { for (const m of mirrors.splice(0)) m.abortAll(new Error('test over')) })

function setup (options: Partial<MirrorOptions> = {}): { mirror: Mirror, upstream: FakeRegistry, store: MemoryBlobStore, tags: MemoryTagIndex, req: MirrorRequest } {
  const upstream = new FakeRegistry()
  const store = new MemoryBlobStore()
  const tags = new MemoryTagIndex()
  const mirror = new Mirror({
    store, tags, upstream, tagTtlMs: () => 60_000, manifestTimeoutMs: 2000,
    metrics: new Metrics({ defaultMetrics: false }), logger: pino({ level: 'silent' }), ...options,
  })
  mirrors.push(mirror)
  return { mirror, upstream, store, tags, req: { registry: 'registry.example.com', repository: upstream.repository, signal: new AbortController().signal } }
}

async function readAll (mirror: Mirror, req: MirrorRequest, digest: Digest): Promise<Buffer> {
  const b = await mirror.getBlob(req, digest)
  return await collect(await b.open())
}

/** Rejects with what a client would see: the domain error as the edge maps it for that kind of request. */
async function rejectsWith (p: Promise<unknown>, code: OciErrorCode): Promise<void> {
  const kind = code === 'BLOB_UNKNOWN' ? 'blob' : 'manifest'
  await assert.rejects(p, (err: unknown) => {
    assert.equal(ociErrorFor(err, kind)?.code, code, `${(err as Error).name}: ${(err as Error).message}`)
    return true
  })
}

void describe('Mirror', () => {
  test('defect 1: a narrow Accept never changes what the tag resolves to for a client that accepts indexes', async () => {
    const { mirror, upstream, tags, req } = setup()
    const narrow = await mirror.getManifest(req, { kind: 'tag', tag: 'v1' as never }, MediaType.DockerManifest)
    assert.equal(narrow.digest, upstream.image.platforms.get('amd64')?.digest, 'the narrow client gets the amd64 manifest, as from Distribution')
    const json = await mirror.getManifest(req, { kind: 'tag', tag: 'v1' as never }, 'application/json')
    assert.equal(json.mediaType, MediaType.DockerManifest)
    const full = await mirror.getManifest(req, { kind: 'tag', tag: 'v1' as never }, CONTAINERD_ACCEPT)
    assert.equal(full.digest, upstream.image.indexDigest)
    assert.equal(full.mediaType, MediaType.DockerManifestList)
    assert.equal((await tags.get(req.registry, req.repository, 'v1'))?.digest, upstream.image.indexDigest, 'the tag record is the index')
    // And once the record exists, a narrow client does not overwrite it.
    await mirror.getManifest(req, { kind: 'tag', tag: 'v1' as never }, MediaType.DockerManifest)
    const again = await mirror.getManifest(req, { kind: 'tag', tag: 'v1' as never }, CONTAINERD_ACCEPT)
    assert.equal(again.digest, upstream.image.indexDigest)
    assert.equal(again.source, 'hit')
  })

  test('defect 2: a cached layer is not a manifest (MANIFEST_UNKNOWN), and a big blob is not read into memory', async () => {
    const { mirror, upstream, store, req } = setup()
    await readAll(mirror, req, upstream.image.layerDigest)
    assert.ok(await store.stat(upstream.image.layerDigest))
    await rejectsWith(mirror.getManifest(req, { kind: 'digest', digest: upstream.image.layerDigest }, CONTAINERD_ACCEPT), 'MANIFEST_UNKNOWN')
    const big = Buffer.alloc(MAX_MANIFEST_BYTES + 1, 1)
    const w = await store.begin(sha256(big))
    await w.write(big)
    await w.commit()
    let reads = 0
    const read = store.read.bind(store)
    store.read = async (d) => { reads++; return await read(d) }
    await rejectsWith(mirror.getManifest(req, { kind: 'digest', digest: sha256(big) }, CONTAINERD_ACCEPT), 'MANIFEST_UNKNOWN')
    assert.equal(reads, 0, 'a blob over the manifest limit is never read')
    // A real manifest in the store is still served.
    const m = await mirror.getManifest(req, { kind: 'digest', digest: upstream.image.indexDigest }, CONTAINERD_ACCEPT)
    assert.equal(m.mediaType, MediaType.DockerManifestList)
  })

  test('defect 6: a client waits at most the first-byte bound for a slow upstream, and gets an error it can fall back on', async () => {
    const { mirror, upstream, req } = setup({ firstByteTimeoutMs: 200 })
    upstream.delayMs = 30_000
    for (const p of [
      mirror.getManifest(req, { kind: 'tag', tag: 'v1' as never }, CONTAINERD_ACCEPT),
      mirror.getManifest(req, { kind: 'digest', digest: upstream.image.indexDigest }, CONTAINERD_ACCEPT),
      mirror.getBlob(req, upstream.image.layerDigest),
    ]) {
      const started = Date.now()
      await rejectsWith(p, 'UNAVAILABLE')
      assert.ok(Date.now() - started < 1500, `answered in ${Date.now() - started} ms`)
    }
    assert.equal(mirror.inflight.length, 1, 'the blob download goes on in the background')
  })

  test('defect 6: a slow upstream past the bound serves the last known digest of a tag', async () => {
    const { mirror, upstream, req } = setup({ firstByteTimeoutMs: 200, tagTtlMs: () => 0 })
    await mirror.getManifest(req, { kind: 'tag', tag: 'v1' as never }, CONTAINERD_ACCEPT)
    upstream.delayMs = 30_000
    const started = Date.now()
    const m = await mirror.getManifest(req, { kind: 'tag', tag: 'v1' as never }, CONTAINERD_ACCEPT)
    assert.ok(Date.now() - started < 1500)
    assert.equal(m.digest, upstream.image.indexDigest)
    assert.equal(m.source, 'stale')
  })

  test('a tag only a peer knows is served when the upstream does not answer within the bound (dropped packets)', async () => {
    const peer = new FakeRegistry()
    const bytes = peer.image.index
    const remote = {
      blobSources: async () => ({ first: [], last: [] }),
      manifest: async (_req: MirrorRequest, ref: { kind: string }) => ref.kind === 'tag' ? { bytes, mediaType: MediaType.DockerManifestList } : undefined,
      distrust: () => {},
    }
    const { mirror, upstream, req } = setup({ firstByteTimeoutMs: 200, remote })
    upstream.delayMs = 30_000
    const started = Date.now()
    const m = await mirror.getManifest(req, { kind: 'tag', tag: 'v1' as never }, CONTAINERD_ACCEPT)
    assert.ok(Date.now() - started < 1500, `answered in ${Date.now() - started} ms`)
    assert.equal(m.digest, peer.image.indexDigest)
    assert.equal(m.source, 'peer')
  })

  test('a blob only a peer found later holds is served when the upstream does not answer (dropped packets)', async () => {
    const peer = new FakeRegistry()
    const { layerDigest, layer } = peer.image
    let laterAsked = 0
    const later = {
      origin: { kind: 'peers' } as const,
      open: async () => {
        laterAsked++
        return { body: Readable.from([layer]), totalSize: layer.byteLength, origin: { kind: 'peer', address: '10.0.0.9:5000', role: 'holder' } as const }
      },
    }
    const remote = { blobSources: async () => ({ first: [], last: [later] }), manifest: async () => undefined, distrust: () => {} }
    const { mirror, upstream, req } = setup({ firstByteTimeoutMs: 2000, upstreamHedgeMs: 50, remote })
    upstream.delayMs = 30_000
    const started = Date.now()
    const b = await mirror.getBlob(req, layerDigest)
    assert.ok(Date.now() - started < 1500, `answered in ${Date.now() - started} ms`)
    assert.equal(b.source, 'peer')
    assert.deepEqual(await collect(await b.open()), layer)
    assert.equal(laterAsked, 1)
  })

  test('a healthy upstream answers a blob before the hedge: peers found later are not asked', async () => {
    let laterAsked = 0
    const later = { origin: { kind: 'peers' } as const, open: async () => { laterAsked++; throw new Error('no peer holds it') } }
    const remote = { blobSources: async () => ({ first: [], last: [later] }), manifest: async () => undefined, distrust: () => {} }
    const { mirror, upstream, req } = setup({ upstreamHedgeMs: 1000, remote })
    const b = await mirror.getBlob(req, upstream.image.layerDigest)
    assert.equal(b.source, 'upstream')
    assert.deepEqual(await collect(await b.open()), upstream.image.layer)
    assert.equal(laterAsked, 0)
  })

  test('a manifest fetched upstream is answered before the store has written it, from memory meanwhile, and kept', async () => {
    const inner = new MemoryBlobStore()
    let release!: () => void
    const gate = new Promise<void>((resolve) => { release = resolve })
    // A store whose writes wait (a disk busy writing back): begin does not return until released.
    const store = Object.assign(Object.create(inner) as MemoryBlobStore, {
      begin: async (digest: Digest, size?: number) => { await gate; return await inner.begin(digest, size) },
      stat: async (digest: Digest) => await inner.stat(digest),
      read: async (digest: Digest) => await inner.read(digest),
      watch: (l: Parameters<MemoryBlobStore['watch']>[0]) => inner.watch(l),
    })
    const { mirror, upstream, req } = setup({ store })
    const { indexDigest } = upstream.image
    const m = await mirror.getManifest(req, { kind: 'digest', digest: indexDigest }, CONTAINERD_ACCEPT)
    assert.equal(m.source, 'upstream')
    assert.equal(await inner.stat(indexDigest), undefined, 'not in the store yet')
    const again = await mirror.getManifest(req, { kind: 'digest', digest: indexDigest }, CONTAINERD_ACCEPT)
    assert.equal(again.source, 'hit')
    assert.equal(upstream.calls.filter((c) => c.includes('manifest')).length, 1, 'the upstream was asked once')
    release()
    await mirror.settled()
    assert.ok(await inner.stat(indexDigest), 'kept once the store took it')
  })

  test('defect 14: stale-if-error: an upstream that fails after the TTL serves the last known digest, marked stale', async () => {
    let now = 1_000_000
    const { mirror, upstream, req } = setup({ tagTtlMs: () => 1000, now: () => now })
    await mirror.getManifest(req, { kind: 'tag', tag: 'v1' as never }, CONTAINERD_ACCEPT)
    now += 42_000
    upstream.isDown = true
    const m = await mirror.getManifest(req, { kind: 'tag', tag: 'v1' as never }, CONTAINERD_ACCEPT)
    assert.equal(m.digest, upstream.image.indexDigest)
    assert.equal(m.source, 'stale')
    assert.equal(m.staleSeconds, 42)
    // Without a record there is nothing to serve: the client hears the upstream is unavailable.
    await rejectsWith(mirror.getManifest({ ...req, repository: 'team/other' }, { kind: 'tag', tag: 'v1' as never }, CONTAINERD_ACCEPT), 'UNAVAILABLE')
  })

  test('defect 14: concurrent clients join one running download: the upstream is asked once, all get every byte', async () => {
    const { mirror, upstream, req } = setup()
    upstream.delayMs = 50
    const results = await Promise.all([1, 2, 3].map(async () => await readAll(mirror, req, upstream.image.layerDigest)))
    for (const r of results) assert.deepEqual(r, upstream.image.layer)
    assert.equal(upstream.calls.filter((c) => c.startsWith('GET blob')).length, 1)
  })

  test('defect 5: content fetched with credentials is served only under the repository it is known in, unless the upstream confirms', async () => {
    const { mirror, upstream, req } = setup({ fetchesWithCredentials: () => true })
    const { layerDigest, indexDigest } = upstream.image
    await readAll(mirror, req, layerDigest)
    await mirror.getManifest(req, { kind: 'digest', digest: indexDigest }, CONTAINERD_ACCEPT)
    const other = { ...req, repository: 'team/other' }
    await rejectsWith(mirror.getBlob(other, layerDigest), 'BLOB_UNKNOWN')
    await rejectsWith(mirror.getManifest(other, { kind: 'digest', digest: indexDigest }, CONTAINERD_ACCEPT), 'MANIFEST_UNKNOWN')
    const heads = (): number => upstream.calls.filter((c) => c.startsWith('HEAD')).length
    assert.equal(heads(), 2, 'the upstream was asked, with our credentials, whether team/other has them')
    await rejectsWith(mirror.getBlob(other, layerDigest), 'BLOB_UNKNOWN')
    assert.equal(heads(), 2, 'a refusal is remembered for a while')
    // A peer asking (local only) for the repository it was fetched under is served; for another, refused without the upstream.
    assert.deepEqual(await readAll(mirror, { ...req, localOnly: true }, layerDigest), upstream.image.layer)
    await rejectsWith(mirror.getBlob({ ...req, repository: 'team/third', localOnly: true }, layerDigest), 'BLOB_UNKNOWN')
    assert.equal(heads(), 2)
    // A repository the upstream confirms has it is served, and remembered.
    upstream.repositories.add('team/fourth')
    const fourth = { ...req, repository: 'team/fourth' }
    assert.deepEqual(await readAll(mirror, fourth, layerDigest), upstream.image.layer)
    assert.deepEqual(await readAll(mirror, fourth, layerDigest), upstream.image.layer)
    assert.equal(heads(), 3)
    assert.equal(upstream.calls.filter((c) => c.startsWith('GET blob')).length, 1, 'the bytes were fetched once')
  })

  test('defect 5: public content (no credentials) is still shared across repositories', async () => {
    const { mirror, upstream, req } = setup()
    await readAll(mirror, req, upstream.image.layerDigest)
    assert.deepEqual(await readAll(mirror, { ...req, repository: 'team/other' }, upstream.image.layerDigest), upstream.image.layer)
    assert.equal(upstream.calls.length, 1)
  })

  test('defect 5: a download under way for one repository is not handed to another the scope does not admit', async () => {
    const { mirror, upstream, req } = setup({ fetchesWithCredentials: () => true })
    upstream.delayMs = 50
    const first = mirror.getBlob(req, upstream.image.layerDigest)
    const joiner = mirror.getBlob({ ...req, repository: 'team/other' }, upstream.image.layerDigest)
    await first
    await rejectsWith(joiner, 'BLOB_UNKNOWN')
  })

  test('defect 5: where restricted content is known survives a restart (FileScopeIndex)', async (t) => {
    const dir = await makeTempDir('scopes')
    t.after(async () => { await dir.cleanup() })
    const a = await FileScopeIndex.open(dir.path)
    const digest = sha256(Buffer.from('x'))
    await a.add(digest, 'registry.example.com/team/app')
    await a.add(digest, 'registry.example.com/team/app')
    const b = await FileScopeIndex.open(dir.path)
    assert.deepEqual([...(b.get(digest) ?? [])], ['registry.example.com/team/app'])
    assert.equal(b.get(sha256(Buffer.from('y'))), undefined)
  })

  test('a tag record that cannot be written (disk full) does not fail the client: it is answered, and asked upstream again next time', async () => {
    const { mirror, upstream, tags, req } = setup()
    tags.set = async () => { throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' }) }
    const m = await mirror.getManifest(req, { kind: 'tag', tag: 'v1' as never }, CONTAINERD_ACCEPT)
    assert.equal(m.digest, upstream.image.indexDigest)
    const again = await mirror.getManifest(req, { kind: 'tag', tag: 'v1' as never }, CONTAINERD_ACCEPT)
    assert.equal(again.digest, upstream.image.indexDigest)
  })
})
