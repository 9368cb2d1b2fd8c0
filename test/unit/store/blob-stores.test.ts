import assert from 'node:assert/strict'
import { mkdir, readdir, utimes, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, test } from 'node:test'
import { FsBlobStore } from '../../../src/store/fs-blob-store.js'
import { MemoryBlobStore } from '../../../src/store/memory-blob-store.js'
import { makeTempDir } from '../../helpers/temp-dir.js'
import { canMount, mountTmpfs } from '../../helpers/tmpfs-mount.js'
import { bytesOf, digestOf, runBlobStoreConformance } from './blob-store-conformance.js'

runBlobStoreConformance('MemoryBlobStore',
  async (options) => ({ store: new MemoryBlobStore(options), cleanup: async () => {} }),
  async (bytes) => ({ store: new MemoryBlobStore({ capacityBytes: bytes }), cleanup: async () => {} }))

runBlobStoreConformance('FsBlobStore', async (options) => {
  const dir = await makeTempDir('fs-blob-store')
  return {
    store: await FsBlobStore.open(dir.path, options),
    cleanup: () => dir.cleanup(),
    tempFiles: () => readdir(join(dir.path, 'tmp')),
  }
}, async (bytes) => {
  // A real full disk: a tmpfs that small (needs root to mount).
  if (!canMount()) return undefined
  const disk = await mountTmpfs('fs-blob-store-small', `${Math.ceil(bytes / 1024)}k`)
  try {
    return {
      store: await FsBlobStore.open(disk.path),
      cleanup: () => disk.cleanup(),
      tempFiles: () => readdir(join(disk.path, 'tmp')),
    }
  } catch (err) {
    await disk.cleanup()
    throw err
  }
})

describe('FsBlobStore on disk', () => {
  test('leftovers in <dir>/tmp are removed at open', async () => {
    const dir = await makeTempDir('fs-blob-store')
    try {
      const crashed = await FsBlobStore.open(dir.path)
      const body = bytesOf(2048)
      const w = await crashed.begin(digestOf(body), body.byteLength)
      await w.write(body.subarray(0, 1024))
      // Simulated crash: the writer is never committed nor aborted; plus a stray file from an older run.
      await writeFile(join(dir.path, 'tmp', 'stray-from-older-run'), 'x')
      await mkdir(join(dir.path, 'tmp', 'stray-dir'))
      assert.equal((await readdir(join(dir.path, 'tmp'))).length, 3)

      const reopened = await FsBlobStore.open(dir.path)
      assert.deepEqual(await readdir(join(dir.path, 'tmp')), [])
      assert.equal(await reopened.stat(digestOf(body)), undefined)
      assert.equal(await reopened.totalBytes(), 0)
      await w.abort() // only to close the crashed writer's file handle
    } finally {
      await dir.cleanup()
    }
  })

  test('the last access of each blob is seeded at open from its file (the later of atime and mtime)', async () => {
    const dir = await makeTempDir('fs-blob-store')
    try {
      const first = await FsBlobStore.open(dir.path)
      const bodies = [bytesOf(100, 1), bytesOf(100, 2)]
      for (const body of bodies) {
        const w = await first.begin(digestOf(body), body.byteLength)
        await w.write(body)
        await w.commit()
      }
      const [older, newer] = bodies.map((b) => digestOf(b))
      const path = (d: string | undefined): string => join(dir.path, 'blobs', 'sha256', (d ?? '').slice('sha256:'.length))
      await utimes(path(older), new Date(1_000_000), new Date(2_000_000))
      await utimes(path(newer), new Date(5_000_000), new Date(3_000_000))
      const reopened = await FsBlobStore.open(dir.path, { now: () => 9_000_000 })
      const seen: Record<string, number> = {}
      for await (const b of reopened.list()) seen[b.digest] = b.lastAccess
      assert.deepEqual(seen, { [older as string]: 2_000_000, [newer as string]: 5_000_000 })
    } finally {
      await dir.cleanup()
    }
  })

  test('a second FsBlobStore on the same dir sees committed blobs and counts them', async () => {
    const dir = await makeTempDir('fs-blob-store')
    try {
      const first = await FsBlobStore.open(dir.path)
      const a = bytesOf(1000, 1)
      const b = bytesOf(500, 2)
      for (const [body, alg] of [[a, 'sha256'], [b, 'sha512']] as const) {
        const w = await first.begin(digestOf(body, alg), body.byteLength)
        await w.write(body)
        await w.commit()
      }
      const second = await FsBlobStore.open(dir.path)
      assert.deepEqual(await second.stat(digestOf(a)), { digest: digestOf(a), size: 1000 })
      assert.deepEqual(await second.read(digestOf(b, 'sha512')), b)
      assert.equal(await second.totalBytes(), 1500)
      const listed: string[] = []
      for await (const info of second.list()) listed.push(info.digest)
      assert.deepEqual(listed.sort(), [digestOf(a), digestOf(b, 'sha512')].sort())
    } finally {
      await dir.cleanup()
    }
  })

  test('blobs live at blobs/<alg>/<hex>; files that are not digests are ignored by list', async () => {
    const dir = await makeTempDir('fs-blob-store')
    try {
      const store = await FsBlobStore.open(dir.path)
      const body = bytesOf(10)
      const digest = digestOf(body)
      const w = await store.begin(digest, 10)
      await w.write(body)
      await w.commit()
      assert.deepEqual(await readdir(join(dir.path, 'blobs', 'sha256')), [digest.slice('sha256:'.length)])
      await writeFile(join(dir.path, 'blobs', 'sha256', 'not-a-digest'), 'junk')
      const reopened = await FsBlobStore.open(dir.path)
      const listed: string[] = []
      for await (const info of reopened.list()) listed.push(info.digest)
      assert.deepEqual(listed, [digest])
      assert.equal(await reopened.totalBytes(), 10)
    } finally {
      await dir.cleanup()
    }
  })
})
