import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { Readable } from 'node:stream'
import { afterEach, beforeEach, describe, test } from 'node:test'
import { pino } from 'pino'
import { ContainerdClient } from '../../../src/containerd/containerd-client.js'
import { ContainerdContentSource, distributionSources } from '../../../src/containerd/containerd-content-source.js'
import type { ContentEvent } from '../../../src/mirror/content-source.js'
import type { Digest } from '../../../src/oci/index.js'
import { makeTempDir, type TempDir } from '../../helpers/temp-dir.js'
import { waitFor } from '../../helpers/wait-for.js'
import { FakeContainerd } from './fake-containerd.js'

const NS = 'k8s.io'
const logger = pino({ level: 'silent' })

function digestOf (bytes: Buffer): Digest {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}` as Digest
}

async function readAll (stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const chunk of stream) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks)
}

const BLOB = Buffer.from(Array.from({ length: 5000 }, (_, i) => i % 251))
const BLOB_DIGEST = digestOf(BLOB)
const MANIFEST_DIGEST = digestOf(Buffer.from('manifest'))
const OTHER_DIGEST = digestOf(Buffer.from('other'))
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json'

void describe('ContainerdContentSource (fake containerd)', () => {
  let tmp: TempDir
  let fake: FakeContainerd
  const sources: ContainerdContentSource[] = []
  const clients: ContainerdClient[] = []

  const newSource = (options: { socket?: string, callTimeoutMs?: number, contentDir?: string } = {}): ContainerdContentSource => {
    const client = new ContainerdClient({ socket: options.socket ?? fake.socket, namespace: NS, callTimeoutMs: options.callTimeoutMs ?? 300 })
    clients.push(client)
    const source = new ContainerdContentSource({ client, logger, resubscribeBackoffMs: { initial: 20, max: 100 }, ...(options.contentDir === undefined ? {} : { contentDir: options.contentDir }) })
    sources.push(source)
    return source
  }

  beforeEach(async () => {
    tmp = await makeTempDir('fake-containerd')
    fake = new FakeContainerd(tmp.path)
    fake.setImage(NS, { name: 'docker.io/library/busybox:latest', digest: MANIFEST_DIGEST, mediaType: OCI_INDEX, size: 8 })
    fake.setImage(NS, { name: 'docker.io/library/busybox@' + MANIFEST_DIGEST, digest: MANIFEST_DIGEST, mediaType: OCI_INDEX, size: 8 })
    fake.setImage(NS, { name: BLOB_DIGEST, digest: MANIFEST_DIGEST, mediaType: OCI_INDEX, size: 8 })
    fake.setImage('other', { name: '127.0.0.1:5001/test/img:v1', digest: MANIFEST_DIGEST, mediaType: OCI_INDEX, size: 8 })
    fake.setBlob(NS, BLOB_DIGEST, BLOB)
    await fake.start()
  })

  afterEach(async () => {
    for (const s of sources.splice(0)) await s.close()
    for (const c of clients.splice(0)) c.close()
    await fake.stop()
    await tmp.cleanup()
  })

  void test('resolves tags from the image list with docker.io normalization; digest and ID names are not tags', async () => {
    const source = newSource()
    await source.start()
    assert.equal(source.synced, true)
    const expected = { digest: MANIFEST_DIGEST, mediaType: OCI_INDEX, size: 8 }
    assert.deepEqual(await source.resolveTag('docker.io', 'busybox', 'latest'), expected)
    assert.deepEqual(await source.resolveTag('registry-1.docker.io', 'library/busybox', 'latest'), expected)
    assert.equal(await source.resolveTag('docker.io', 'library/busybox', 'v2'), undefined)
    assert.equal(await source.resolveTag('docker.io', 'library/sha256', BLOB_DIGEST.slice(7)), undefined)
    // Another namespace's image is not ours.
    assert.equal(await source.resolveTag('127.0.0.1:5001', 'test/img', 'v1'), undefined)
    assert.equal(await source.resolveTag('not a registry', 'x', 'y'), undefined)
    // Answered from memory: no Get calls.
    assert.equal(fake.calls.filter((c) => c.method === 'Get').length, 0)
    assert.ok(fake.calls.every((c) => c.namespace === NS))
  })

  void test('events keep the index current and are re-emitted through watch()', async () => {
    const source = newSource()
    const events: ContentEvent[] = []
    source.watch((e) => events.push(e))
    await source.start()
    await waitFor(() => fake.subscriberCount === 1, { timeoutMs: 2000, what: 'subscription' })

    fake.setImage(NS, { name: 'ghcr.io/o/app:1', digest: OTHER_DIGEST, mediaType: OCI_INDEX, size: 5 })
    fake.publish(NS, '/images/create', 'ghcr.io/o/app:1')
    fake.publish('other', '/images/create', 'ghcr.io/o/ignored:1')
    await waitFor(async () => (await source.resolveTag('ghcr.io', 'o/app', '1'))?.digest === OTHER_DIGEST, { timeoutMs: 2000, what: 'create applied' })

    fake.images.get(NS)?.delete('docker.io/library/busybox:latest')
    fake.publish(NS, '/images/delete', 'docker.io/library/busybox:latest')
    fake.publish(NS, '/content/delete', BLOB_DIGEST)
    await waitFor(async () => (await source.resolveTag('docker.io', 'busybox', 'latest')) === undefined, { timeoutMs: 2000, what: 'delete applied' })
    await waitFor(() => events.length >= 4, { timeoutMs: 2000, what: 'events' })
    assert.deepEqual(events, [
      { type: 'tag-set', registry: 'docker.io', repository: 'library/busybox', tag: 'latest', digest: MANIFEST_DIGEST },
      { type: 'tag-set', registry: 'ghcr.io', repository: 'o/app', tag: '1', digest: OTHER_DIGEST },
      { type: 'tag-removed', registry: 'docker.io', repository: 'library/busybox', tag: 'latest', digest: MANIFEST_DIGEST },
      { type: 'blob-removed', digest: BLOB_DIGEST },
    ])
  })

  void test('a dropped event stream is re-subscribed and the index reloaded (changes missed meanwhile are seen)', async () => {
    const source = newSource()
    await source.start()
    await waitFor(() => fake.subscriberCount === 1, { timeoutMs: 2000, what: 'subscription' })
    fake.dropSubscribers()
    fake.images.get(NS)?.delete('docker.io/library/busybox:latest')
    fake.setImage(NS, { name: 'quay.io/x/y:2', digest: OTHER_DIGEST, mediaType: OCI_INDEX, size: 5 })
    await waitFor(async () => source.synced && (await source.resolveTag('quay.io', 'x/y', '2')) !== undefined, { timeoutMs: 3000, what: 'reload after re-subscribe' })
    assert.equal(await source.resolveTag('docker.io', 'busybox', 'latest'), undefined)
    assert.equal(fake.subscriberCount, 1)
  })

  void test('without start() (or while unsynced) tags are looked up live', async () => {
    const source = newSource()
    assert.equal(source.synced, false)
    assert.equal((await source.resolveTag('docker.io', 'busybox', 'latest'))?.digest, MANIFEST_DIGEST)
    assert.equal(await source.resolveTag('docker.io', 'busybox', 'nope'), undefined)
    assert.deepEqual(fake.calls.filter((c) => c.method === 'Get').length, 2)
  })

  void test('stat and open over gRPC, whole and ranged; absent blobs are misses', async () => {
    const source = newSource()
    assert.deepEqual(await source.stat(BLOB_DIGEST), { digest: BLOB_DIGEST, size: BLOB.length, knownIn: [] })
    assert.equal(await source.stat(OTHER_DIGEST), undefined)
    assert.equal(await source.open(OTHER_DIGEST), undefined)
    const whole = await source.open(BLOB_DIGEST)
    assert.ok(whole !== undefined)
    assert.ok((await readAll(whole)).equals(BLOB))
    const part = await source.open(BLOB_DIGEST, { start: 999, end: 3001 })
    assert.ok(part !== undefined)
    assert.ok((await readAll(part)).equals(BLOB.subarray(999, 3002)))
    const tail = await source.open(BLOB_DIGEST, { start: 4990, end: 10_000 })
    assert.ok(tail !== undefined)
    assert.ok((await readAll(tail)).equals(BLOB.subarray(4990)))
    await assert.rejects(source.open(BLOB_DIGEST, { start: 5000, end: 5001 }), { code: 'RANGE_INVALID' })
  })

  void test('open reads the content dir when the file matches, and falls back to gRPC when it does not', async () => {
    const contentDir = join(tmp.path, 'content')
    const dir = join(contentDir, 'blobs', 'sha256')
    await mkdir(dir, { recursive: true })
    // Same size, different bytes: proves which path served the read.
    const onDisk = Buffer.alloc(BLOB.length, 7)
    await writeFile(join(dir, BLOB_DIGEST.slice(7)), onDisk)
    const source = newSource({ contentDir })
    const ranged = await source.open(BLOB_DIGEST, { start: 10, end: 19 })
    assert.ok(ranged !== undefined)
    assert.ok((await readAll(ranged)).equals(onDisk.subarray(10, 20)))
    assert.equal(fake.calls.filter((c) => c.method === 'Read').length, 0)

    await writeFile(join(dir, BLOB_DIGEST.slice(7)), Buffer.alloc(3))
    const fallback = await source.open(BLOB_DIGEST, { start: 10, end: 19 })
    assert.ok(fallback !== undefined)
    assert.ok((await readAll(fallback)).equals(BLOB.subarray(10, 20)))
    assert.equal(fake.calls.filter((c) => c.method === 'Read').length, 1)
  })

  void test('open with the info of a stat just made asks containerd nothing more before reading the file', async () => {
    const contentDir = join(tmp.path, 'content')
    const dir = join(contentDir, 'blobs', 'sha256')
    await mkdir(dir, { recursive: true })
    await writeFile(join(dir, BLOB_DIGEST.slice(7)), BLOB)
    const source = newSource({ contentDir })
    const info = await source.stat(BLOB_DIGEST)
    assert.ok(info !== undefined)
    const before = fake.calls.length
    const stream = await source.open(BLOB_DIGEST, { start: 100, end: 4999 }, undefined, info)
    assert.ok(stream !== undefined)
    assert.ok((await readAll(stream)).equals(BLOB.subarray(100)))
    assert.deepEqual(fake.calls.slice(before).map((c) => c.method), [])
    // Without it, open looks the blob up itself.
    await readAll(await source.open(BLOB_DIGEST) ?? assert.fail('no stream'))
    assert.deepEqual(fake.calls.slice(before).map((c) => c.method), ['Info'])
  })

  void test('a hanging containerd is a miss within the call timeout', async () => {
    const source = newSource()
    fake.hanging.add('Info')
    fake.hanging.add('Get')
    const started = Date.now()
    assert.equal(await source.stat(BLOB_DIGEST), undefined)
    assert.equal(await source.open(BLOB_DIGEST), undefined)
    assert.equal(await source.resolveTag('docker.io', 'busybox', 'latest'), undefined)
    const elapsed = Date.now() - started
    assert.ok(elapsed < 3 * 300 + 500, `took ${elapsed} ms`)
  })

  void test('the AbortSignal cancels a pending call', async () => {
    const source = newSource({ callTimeoutMs: 10_000 })
    fake.hanging.add('Info')
    const started = Date.now()
    await assert.rejects(source.stat(BLOB_DIGEST, AbortSignal.timeout(100)), { name: 'TimeoutError' })
    assert.ok(Date.now() - started < 1000)
  })

  void test('a read that stalls fails with a timeout instead of hanging', async () => {
    const source = newSource()
    fake.isReadStalling = true
    const stream = await source.open(BLOB_DIGEST)
    assert.ok(stream !== undefined)
    await assert.rejects(readAll(stream), { code: 'ERR_CONTAINERD_TIMEOUT' })
  })

  void test('no socket: every call is a fast miss and start() does not hang', async () => {
    const source = newSource({ socket: join(tmp.path, 'missing.sock') })
    const started = Date.now()
    await source.start()
    assert.equal(source.synced, false)
    assert.equal(await source.resolveTag('docker.io', 'busybox', 'latest'), undefined)
    assert.equal(await source.stat(BLOB_DIGEST), undefined)
    assert.equal(await source.open(BLOB_DIGEST), undefined)
    assert.ok(Date.now() - started < 2000, `took ${Date.now() - started} ms`)
  })

  void test('listBlobs lists the namespace content', async () => {
    const source = newSource()
    const blobs = []
    for await (const b of source.listBlobs()) blobs.push(b)
    assert.deepEqual(blobs, [{ digest: BLOB_DIGEST, size: BLOB.length }])
  })
})

void test('distributionSources: the repositories containerd\'s source labels name, as registry/repository', () => {
  assert.deepEqual(distributionSources({
    'containerd.io/distribution.source.docker.io': 'library/busybox,team/app',
    'containerd.io/distribution.source.127.0.0.1:5001': 'e2e/x',
    'containerd.io/gc.ref.content.l.0': 'sha256:abc',
    'containerd.io/distribution.source.ghcr.io': '',
  }), ['docker.io/library/busybox', 'docker.io/team/app', '127.0.0.1:5001/e2e/x'])
})
