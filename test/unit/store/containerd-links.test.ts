import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { mkdir, rm, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, beforeEach, describe, test } from 'node:test'
import { pino } from 'pino'
import type { Digest } from '../../../src/oci/index.js'
import type { BlobInfo } from '../../../src/store/blob-store.js'
import { ContainerdLinker, type ContainerdBlobs, type ContainerdLinkerOptions } from '../../../src/store/containerd-links.js'
import { FsBlobStore } from '../../../src/store/fs-blob-store.js'
import { makeTempDir, type TempDir } from '../../helpers/temp-dir.js'
import { waitFor } from '../../helpers/wait-for.js'

const logger = pino({ level: 'silent' })

function digestOf (bytes: Buffer): Digest {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}` as Digest
}

/** containerd as the linker sees it: files in a content dir, metadata for what `hold` named, events on demand. */
class FakeContainerd implements ContainerdBlobs {
  readonly #listeners = new Set<(e: { type: string, digest?: Digest }) => void>()
  readonly held = new Map<Digest, number>()
  constructor (readonly contentDir: string) {}
  path (digest: Digest): string { return join(this.contentDir, 'blobs', 'sha256', digest.slice(7)) }
  /** Commits a blob the way containerd does: a read-only file under blobs/, then its metadata. */
  async commit (bytes: Buffer, digest = digestOf(bytes)): Promise<Digest> {
    await mkdir(join(this.contentDir, 'blobs', 'sha256'), { recursive: true })
    await writeFile(this.path(digest), bytes, { mode: 0o444 })
    this.held.set(digest, bytes.byteLength)
    return digest
  }

  async remove (digest: Digest): Promise<void> {
    await rm(this.path(digest))
    this.held.delete(digest)
  }

  async stat (digest: Digest): Promise<BlobInfo | undefined> {
    const size = this.held.get(digest)
    return size === undefined ? undefined : { digest, size }
  }

  watch (listener: (e: { type: string, digest?: Digest }) => void): () => void {
    this.#listeners.add(listener)
    return () => { this.#listeners.delete(listener) }
  }

  emit (event: { type: string, digest?: Digest }): void {
    for (const l of this.#listeners) l(event)
  }
}

async function put (store: FsBlobStore, bytes: Buffer): Promise<Digest> {
  const digest = digestOf(bytes)
  const w = await store.begin(digest, bytes.byteLength)
  await w.write(bytes)
  await w.commit()
  return digest
}

void describe('ContainerdLinker: one copy of each blob with containerd', () => {
  const dirs: TempDir[] = []
  const linkers: ContainerdLinker[] = []
  let dataDir: string
  let store: FsBlobStore
  let containerd: FakeContainerd

  beforeEach(async () => {
    const dir = await makeTempDir('containerd-links')
    dirs.push(dir)
    dataDir = join(dir.path, 'data')
    store = await FsBlobStore.open(dataDir)
    containerd = new FakeContainerd(join(dir.path, 'content'))
    await mkdir(containerd.contentDir, { recursive: true })
  })

  after(async () => {
    for (const l of linkers) await l.close()
    for (const d of dirs) await d.cleanup()
  })

  async function startLinker (options: Partial<ContainerdLinkerOptions> = {}): Promise<ContainerdLinker> {
    const linker = new ContainerdLinker({ store, containerd, contentDir: containerd.contentDir, dataDir, logger, retryMs: 60_000, ...options })
    linkers.push(linker)
    await linker.start()
    return linker
  }

  const ownPath = (digest: Digest): string => join(dataDir, 'blobs', 'sha256', digest.slice(7))

  test('at start, a blob both hold becomes one inode with two names; it outlives containerd\'s name', async () => {
    const bytes = randomBytes(300_000)
    const digest = await put(store, bytes)
    await containerd.commit(bytes)
    const linker = await startLinker()
    assert.equal(linker.mode, 'link')
    assert.equal(linker.linked, 1)
    const [own, theirs] = await Promise.all([stat(ownPath(digest)), stat(containerd.path(digest))])
    assert.equal(own.ino, theirs.ino)
    assert.equal(own.nlink, 2)
    assert.equal(await store.isShared(digest), true)
    assert.deepEqual(await store.read(digest), bytes)
    const listed: Array<[Digest, number]> = []
    for await (const info of store.list()) listed.push([info.digest, info.size])
    assert.deepEqual(listed, [[digest, bytes.byteLength]])

    const announced: Digest[] = []
    await linker.close()
    const again = await startLinker({ onStillHeld: (d) => announced.push(d) })
    await containerd.remove(digest) // ctr content rm, as discard_unpacked_layers does
    containerd.emit({ type: 'blob-removed', digest })
    await again.idle()
    assert.deepEqual(announced, [digest], 'peers are told again that the node holds it')
    assert.equal(await store.isShared(digest), false)
    assert.equal((await stat(ownPath(digest))).nlink, 1)
    assert.deepEqual(await store.read(digest), bytes)
  })

  test('a blob the agent commits after containerd did is linked on the store\'s event', async () => {
    const linker = await startLinker()
    const bytes = randomBytes(70_000)
    await containerd.commit(bytes)
    const digest = await put(store, bytes)
    await linker.idle()
    assert.equal((await stat(ownPath(digest))).ino, (await stat(containerd.path(digest))).ino)
  })

  test('a blob containerd commits later is linked on its event, or on an image event for containerd 1.6', async () => {
    const linker = await startLinker()
    const first = randomBytes(50_000)
    const second = randomBytes(60_000)
    const [a, b] = [await put(store, first), await put(store, second)]
    await linker.idle()
    assert.equal((await stat(ownPath(a))).nlink, 1, 'containerd holds nothing yet: untouched')
    await containerd.commit(first)
    containerd.emit({ type: 'blob-added', digest: a })
    await linker.idle()
    assert.equal((await stat(ownPath(a))).ino, (await stat(containerd.path(a))).ino)

    await containerd.commit(second)
    containerd.emit({ type: 'tag-set', digest: 'sha256:0000000000000000000000000000000000000000000000000000000000000000' as Digest })
    await linker.idle()
    assert.equal((await stat(ownPath(b))).ino, (await stat(containerd.path(b))).ino)
    assert.equal(linker.linked, 2)
  })

  test('pending blobs are retried on a timer', async () => {
    const linker = await startLinker({ retryMs: 20 })
    const bytes = randomBytes(10_000)
    const digest = await put(store, bytes)
    await linker.idle()
    await containerd.commit(bytes)
    await waitFor(async () => (await stat(ownPath(digest))).nlink === 2, { timeoutMs: 5000, what: 'the timer retry to link the blob' })
  })

  test('containerd\'s file missing or of another size: the own copy stays untouched', async () => {
    const bytes = randomBytes(40_000)
    const digest = await put(store, bytes)
    const other = randomBytes(40_000)
    const otherDigest = await put(store, other)
    await containerd.commit(bytes.subarray(1), digest) // same name, wrong size
    const before = await Promise.all([stat(ownPath(digest)), stat(ownPath(otherDigest))])
    const linker = await startLinker()
    containerd.emit({ type: 'blob-added', digest })
    containerd.emit({ type: 'blob-added', digest: otherDigest })
    await linker.idle()
    const now = await Promise.all([stat(ownPath(digest)), stat(ownPath(otherDigest))])
    assert.deepEqual(now.map((s) => [s.ino, s.nlink]), before.map((s) => [s.ino, 1]))
    assert.equal(linker.linked, 0)
    assert.deepEqual(await store.read(digest), bytes)
    assert.deepEqual(await store.read(otherDigest), other)
    assert.equal((await stat(join(dataDir, 'tmp'))).isDirectory(), true)
  })

  test('across mounts (EXDEV) the own copy of a large blob containerd holds is dropped, and peers are told again', async () => {
    const exdev = async (): Promise<void> => { throw Object.assign(new Error('EXDEV: cross-device link not permitted'), { code: 'EXDEV' }) }
    const dropped: Digest[] = []
    const large = randomBytes(200_000)
    const small = randomBytes(1000)
    const notInContainerd = randomBytes(200_000)
    const [l, s, n] = [await put(store, large), await put(store, small), await put(store, notInContainerd)]
    await containerd.commit(large)
    await containerd.commit(small)
    const linker = await startLinker({ linkFile: exdev, dropMinBytes: 100_000, onStillHeld: (d) => dropped.push(d) })
    assert.equal(linker.mode, 'drop')
    assert.deepEqual(dropped, [l])
    assert.equal(await store.stat(l), undefined, 'served from containerd from now on')
    assert.deepEqual(await store.read(s), small, 'manifests and configs keep their copy')
    assert.deepEqual(await store.read(n), notInContainerd)
    assert.equal((await stat(containerd.path(l))).nlink, 1)
  })

  test('different filesystems are detected at start', async (t) => {
    // /dev/shm is a tmpfs apart from the temp dir on most machines.
    const shm = await stat('/dev/shm').catch(() => undefined)
    if (shm === undefined || shm.dev === (await stat(dataDir)).dev) {
      t.skip('no second filesystem here')
      return
    }
    const linker = new ContainerdLinker({ store, containerd, contentDir: '/dev/shm', dataDir, logger })
    linkers.push(linker)
    await linker.start()
    assert.equal(linker.mode, 'drop')
  })
})
