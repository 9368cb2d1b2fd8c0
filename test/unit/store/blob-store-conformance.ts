import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import type { Readable } from 'node:stream'
import { describe, test, type TestContext } from 'node:test'
import type { Digest } from '../../../src/oci/index.js'
import type { BlobStore, BlobStoreEvent } from '../../../src/store/blob-store.js'
import { DigestMismatchError } from '../../../src/store/errors.js'

export interface BlobStoreFixture {
  readonly store: BlobStore
  readonly cleanup: () => Promise<void>
  /** Names of temporary (uncommitted) files the adapter holds, for adapters that have any. */
  readonly tempFiles?: () => Promise<string[]>
}

export function digestOf (bytes: Uint8Array, algorithm: 'sha256' | 'sha512' = 'sha256'): Digest {
  return `${algorithm}:${createHash(algorithm).update(bytes).digest('hex')}` as Digest
}

export async function collect (stream: Readable | undefined): Promise<Buffer> {
  assert.ok(stream !== undefined, 'expected a stream')
  const chunks: Buffer[] = []
  for await (const chunk of stream) chunks.push(Buffer.from(chunk as Uint8Array))
  return Buffer.concat(chunks)
}

/** Deterministic pseudo-random bytes, so failures are reproducible. */
export function bytesOf (size: number, seed = 1): Buffer {
  const out = Buffer.alloc(size)
  let x = seed
  for (let i = 0; i < size; i++) {
    x = (x * 1103515245 + 12345) >>> 0
    out[i] = x >>> 24
  }
  return out
}

async function list (store: BlobStore): Promise<Array<{ digest: string, size: number }>> {
  const out: Array<{ digest: string, size: number }> = []
  for await (const info of store.list()) out.push({ digest: info.digest, size: info.size })
  return out.sort((a, b) => a.digest.localeCompare(b.digest))
}

async function put (store: BlobStore, bytes: Buffer, algorithm: 'sha256' | 'sha512' = 'sha256'): Promise<Digest> {
  const digest = digestOf(bytes, algorithm)
  const w = await store.begin(digest, bytes.byteLength)
  await w.write(bytes)
  await w.commit()
  return digest
}

/**
 * The contract every BlobStore adapter keeps; run it once per adapter. Each test gets a fresh store from
 * `makeStore` and cleans it up, pass or fail. `makeSmallStore` gives a store with room for about `bytes`
 * (undefined where the adapter cannot be made small here: those tests are skipped).
 */
/** What a fixture's store is built with: a clock for last accesses. */
export interface BlobStoreFixtureOptions {
  readonly now?: () => number
}

export function runBlobStoreConformance (name: string, makeStore: (options?: BlobStoreFixtureOptions) => Promise<BlobStoreFixture>, makeSmallStore?: (bytes: number) => Promise<BlobStoreFixture | undefined>): void {
  const withStore = (fn: (f: BlobStoreFixture) => Promise<void>, options?: BlobStoreFixtureOptions) => async (): Promise<void> => {
    const fixture = await makeStore(options)
    try {
      await fn(fixture)
    } finally {
      await fixture.cleanup()
    }
  }

  /** Nothing visible and nothing left behind for `digest`. */
  async function assertNothingKept (f: BlobStoreFixture, digest: Digest): Promise<void> {
    assert.equal(await f.store.stat(digest), undefined)
    assert.equal(await f.store.read(digest), undefined)
    assert.equal(await f.store.open(digest), undefined)
    assert.deepEqual(await list(f.store), [])
    assert.equal(await f.store.totalBytes(), 0)
    if (f.tempFiles !== undefined) assert.deepEqual(await f.tempFiles(), [], 'no temporary file left behind')
  }

  describe(`BlobStore conformance: ${name}`, () => {
    test('write in chunks, commit, then stat, read and open (whole and ranges)', withStore(async ({ store }) => {
      const body = bytesOf(100_000)
      const digest = digestOf(body)
      const w = await store.begin(digest, body.byteLength)
      assert.equal(w.digest, digest)
      for (let off = 0; off < body.byteLength; off += 30_000) await w.write(body.subarray(off, off + 30_000))
      assert.equal(w.written, body.byteLength)
      assert.equal(await store.stat(digest), undefined, 'invisible before commit')
      assert.equal(w.isKeeping, true)
      const committing = w.commit()
      assert.equal(w.isKeeping, true, 'a blob being committed is still being kept (readers of a download read it back meanwhile)')
      assert.deepEqual(await committing, { digest, size: body.byteLength, isKept: true })
      assert.equal(w.isKeeping, true, 'and once kept, it was kept')
      assert.deepEqual(await store.stat(digest), { digest, size: body.byteLength })
      assert.deepEqual(await store.read(digest), body)
      assert.deepEqual(await collect(await store.open(digest)), body)
      assert.deepEqual(await collect(await store.open(digest, { start: 10, end: 19 })), body.subarray(10, 20))
      assert.deepEqual(await collect(await store.open(digest, { start: 0, end: 0 })), body.subarray(0, 1))
      assert.deepEqual(await collect(await store.open(digest, { start: 99_999, end: 99_999 })), body.subarray(99_999))
      assert.deepEqual(await collect(await store.open(digest, { start: 65_000, end: 99_999 })), body.subarray(65_000))
    }))

    test('writev takes several chunks in order, mixed with write; readBack sees them', withStore(async ({ store }) => {
      const body = bytesOf(300_000)
      const digest = digestOf(body)
      const w = await store.begin(digest, body.byteLength)
      await w.writev([body.subarray(0, 10), body.subarray(10, 70_000), body.subarray(70_000, 70_001)])
      await w.write(body.subarray(70_001, 200_000))
      await w.writev([body.subarray(200_000, 250_000), body.subarray(250_000)])
      await w.writev([])
      assert.equal(w.written, body.byteLength)
      assert.deepEqual(await w.readBack(9, 3), body.subarray(9, 12))
      assert.deepEqual(await w.readBack(249_990, 20), body.subarray(249_990, 250_010))
      assert.deepEqual(await w.commit(), { digest, size: body.byteLength, isKept: true })
      assert.deepEqual(await store.read(digest), body)
    }))

    test('an unknown digest is absent everywhere', withStore(async ({ store }) => {
      const digest = digestOf(Buffer.from('nothing'))
      assert.equal(await store.stat(digest), undefined)
      assert.equal(await store.read(digest), undefined)
      assert.equal(await store.open(digest), undefined)
      assert.equal(await store.open(digest, { start: 0, end: 1 }), undefined)
      assert.equal(await store.delete(digest), false)
    }))

    test('the empty blob', withStore(async ({ store }) => {
      const digest = await put(store, Buffer.alloc(0))
      assert.deepEqual(await store.stat(digest), { digest, size: 0 })
      assert.deepEqual(await store.read(digest), Buffer.alloc(0))
      assert.deepEqual(await collect(await store.open(digest)), Buffer.alloc(0))
    }))

    test('sha512 digests', withStore(async ({ store }) => {
      const body = bytesOf(5000, 7)
      const digest = await put(store, body, 'sha512')
      assert.match(digest, /^sha512:[0-9a-f]{128}$/)
      assert.deepEqual(await store.stat(digest), { digest, size: 5000 })
      assert.deepEqual(await store.read(digest), body)
      assert.deepEqual(await collect(await store.open(digest, { start: 4990, end: 4999 })), body.subarray(4990))
      assert.deepEqual(await list(store), [{ digest, size: 5000 }])
    }))

    test('wrong bytes: commit throws DigestMismatchError and nothing is kept', withStore(async (f) => {
      const events: BlobStoreEvent[] = []
      f.store.watch((e) => events.push(e))
      const good = bytesOf(1000)
      const digest = digestOf(good)
      const bad = Buffer.from(good)
      bad[500] = (bad[500] ?? 0) ^ 0xff
      const w = await f.store.begin(digest, good.byteLength)
      await w.write(bad)
      await assert.rejects(w.commit(), (err: unknown) => {
        assert.ok(err instanceof DigestMismatchError)
        assert.equal(err.code, 'ERR_DIGEST_MISMATCH')
        assert.equal(err.expected, digest)
        assert.equal(err.actual, digestOf(bad))
        return true
      })
      await w.abort()
      await w.abort()
      await assertNothingKept(f, digest)
      assert.deepEqual(events, [])
    }))

    test('size mismatch: right bytes but a larger expected size fail at commit', withStore(async (f) => {
      const body = bytesOf(1000)
      const digest = digestOf(body)
      const w = await f.store.begin(digest, body.byteLength + 1)
      await w.write(body)
      await assert.rejects(w.commit(), DigestMismatchError)
      await w.abort()
      await assertNothingKept(f, digest)
    }))

    test('size mismatch: writing past the expected size fails at once', withStore(async (f) => {
      const body = bytesOf(1000)
      const digest = digestOf(body)
      const w = await f.store.begin(digest, body.byteLength - 1)
      await assert.rejects(w.write(body), (err: unknown) => err instanceof DigestMismatchError && err.actualSize === 1000 && err.expectedSize === 999)
      await w.abort()
      await assertNothingKept(f, digest)
    }))

    test('without an expected size, the digest alone decides', withStore(async ({ store }) => {
      const body = bytesOf(1234)
      const digest = digestOf(body)
      const w = await store.begin(digest)
      await w.write(body)
      assert.deepEqual(await w.commit(), { digest, size: 1234, isKept: true })
    }))

    test('abort leaves nothing, and the writer is closed afterwards', withStore(async (f) => {
      const body = bytesOf(4096)
      const digest = digestOf(body)
      const w = await f.store.begin(digest, body.byteLength)
      await w.write(body)
      await w.abort()
      await w.abort()
      await assertNothingKept(f, digest)
      await assert.rejects(w.write(body))
      await assert.rejects(w.commit())
      await assert.rejects(w.readBack(0, 1))
    }))

    test('readBack returns the bytes written so far while the writer is open', withStore(async ({ store }) => {
      const body = bytesOf(10_000)
      const digest = digestOf(body)
      const w = await store.begin(digest, body.byteLength)
      assert.equal(w.written, 0)
      assert.deepEqual(await w.readBack(0, 100), Buffer.alloc(0))
      await w.write(body.subarray(0, 4000))
      assert.equal(w.written, 4000)
      assert.deepEqual(await w.readBack(0, 4000), body.subarray(0, 4000))
      assert.deepEqual(await w.readBack(1000, 10), body.subarray(1000, 1010))
      assert.deepEqual(await w.readBack(3990, 100), body.subarray(3990, 4000), 'clipped to what was written')
      assert.deepEqual(await w.readBack(4000, 100), Buffer.alloc(0))
      await w.write(body.subarray(4000))
      assert.deepEqual(await w.readBack(3990, 20), body.subarray(3990, 4010))
      await w.commit()
      await assert.rejects(w.readBack(0, 1), 'closed after commit')
      assert.deepEqual(await store.read(digest), body)
    }))

    test('list, totalBytes and delete', withStore(async ({ store }) => {
      const a = bytesOf(100, 1)
      const b = bytesOf(250, 2)
      const c = bytesOf(40, 3)
      const da = await put(store, a)
      const db = await put(store, b)
      const dc = await put(store, c, 'sha512')
      assert.deepEqual(await list(store), [{ digest: da, size: 100 }, { digest: db, size: 250 }, { digest: dc, size: 40 }].sort((x, y) => x.digest.localeCompare(y.digest)))
      assert.equal(await store.totalBytes(), 390)
      assert.equal(await store.delete(db), true)
      assert.equal(await store.delete(db), false)
      assert.equal(await store.stat(db), undefined)
      assert.equal(await store.read(db), undefined)
      assert.equal(await store.open(db), undefined)
      assert.deepEqual(await list(store), [{ digest: da, size: 100 }, { digest: dc, size: 40 }].sort((x, y) => x.digest.localeCompare(y.digest)))
      assert.equal(await store.totalBytes(), 140)
      assert.equal(await store.delete(dc), true)
      assert.equal(await store.totalBytes(), 100)
    }))

    test('watch reports added and removed; unsubscribe stops reports', withStore(async ({ store }) => {
      const events: BlobStoreEvent[] = []
      const other: BlobStoreEvent[] = []
      const unsubscribe = store.watch((e) => events.push(e))
      store.watch((e) => other.push(e))
      const a = bytesOf(10, 1)
      const da = await put(store, a)
      await store.delete(da)
      await store.delete(da)
      unsubscribe()
      const db = await put(store, bytesOf(20, 2))
      assert.deepEqual(events, [{ type: 'added', digest: da, size: 10 }, { type: 'removed', digest: da, size: 10 }])
      assert.deepEqual(other.map((e) => `${e.type} ${e.digest}`), [`added ${da}`, `removed ${da}`, `added ${db}`])
    }))

    test('committing the same digest twice is fine: one blob, one event, counted once', withStore(async ({ store }) => {
      const events: BlobStoreEvent[] = []
      store.watch((e) => events.push(e))
      const body = bytesOf(3000)
      const digest = await put(store, body)
      assert.equal(await put(store, body), digest)
      // Two writers open at once for the same digest (two pulls racing).
      const w1 = await store.begin(digest, body.byteLength)
      const w2 = await store.begin(digest, body.byteLength)
      await w1.write(body)
      await w2.write(body)
      assert.deepEqual(await w1.commit(), { digest, size: 3000, isKept: true })
      assert.deepEqual(await w2.commit(), { digest, size: 3000, isKept: true })
      assert.deepEqual(await store.read(digest), body)
      assert.deepEqual(await list(store), [{ digest, size: 3000 }])
      assert.equal(await store.totalBytes(), 3000)
      assert.deepEqual(events, [{ type: 'added', digest, size: 3000 }])
    }))

    test('a failed second write of a committed digest does not disturb the blob', withStore(async ({ store }) => {
      const body = bytesOf(3000)
      const digest = await put(store, body)
      const w = await store.begin(digest, body.byteLength)
      await w.write(bytesOf(3000, 99))
      await assert.rejects(w.commit(), DigestMismatchError)
      await w.abort()
      assert.deepEqual(await store.read(digest), body)
      assert.equal(await store.totalBytes(), 3000)
    }))

    test('an open stream of a blob keeps its bytes when the blob is deleted', withStore(async ({ store }) => {
      const body = bytesOf(50_000)
      const digest = await put(store, body)
      const stream = await store.open(digest)
      await store.delete(digest)
      assert.deepEqual(await collect(stream), body)
    }))

    let clock = 1000
    test('list reports the last access: a commit, an open or a read; stat is not one', withStore(async ({ store }) => {
      const a = await put(store, bytesOf(10, 1))
      clock = 2000
      const b = await put(store, bytesOf(10, 2))
      clock = 3000
      const c = await put(store, bytesOf(10, 3))
      const times = async (): Promise<Record<string, number>> => {
        const out: Record<string, number> = {}
        for await (const info of store.list()) out[info.digest] = info.lastAccess
        return out
      }
      assert.deepEqual(await times(), { [a]: 1000, [b]: 2000, [c]: 3000 })
      clock = 4000
      await collect(await store.open(a, { start: 0, end: 1 }))
      clock = 5000
      await store.read(b)
      clock = 6000
      await store.stat(c)
      assert.deepEqual(await times(), { [a]: 4000, [b]: 5000, [c]: 3000 })
    }, { now: () => clock }))

    test('pins: by reason, before or after the blob is held, until the last reason is withdrawn', withStore(async ({ store }) => {
      const body = bytesOf(10)
      const digest = digestOf(body)
      assert.equal(store.pins.isPinned(digest), false)
      store.pins.pin(digest, 'precache:a')
      store.pins.pin(digest, 'precache:b')
      await put(store, body)
      assert.equal(store.pins.isPinned(digest), true)
      assert.equal(store.pins.unpin(digest, 'precache:a'), false, 'still pinned by b')
      assert.equal(store.pins.isPinned(digest), true)
      assert.equal(store.pins.unpin(digest, 'precache:b'), true)
      assert.equal(store.pins.isPinned(digest), false)
      assert.equal(store.pins.unpin(digest, 'precache:b'), true, 'unpinning twice is fine')
    }))
  })

  const withSmallStore = (bytes: number, fn: (f: BlobStoreFixture) => Promise<void>) => async (t: TestContext): Promise<void> => {
    const fixture = await makeSmallStore?.(bytes)
    if (fixture === undefined) {
      t.skip(`${name} cannot be made small here`)
      return
    }
    try {
      await fn(fixture)
    } finally {
      await fixture.cleanup()
    }
  }

  describe(`BlobStore conformance: ${name} out of space (defect 10)`, () => {
    test('defect 10: a blob bigger than the room is written and verified without being kept; nothing is left', withSmallStore(256 << 10, async (f) => {
      const events: BlobStoreEvent[] = []
      f.store.watch((e) => events.push(e))
      const body = bytesOf(1 << 20)
      const digest = digestOf(body)
      const w = await f.store.begin(digest, body.byteLength)
      for (let off = 0; off < body.byteLength; off += 100_000) await w.writev([body.subarray(off, off + 50_000), body.subarray(off + 50_000, off + 100_000)])
      assert.equal(w.written, body.byteLength)
      assert.equal(w.isKeeping, false)
      // What was written before the disk filled stays readable until commit (readers that fell behind); not past it.
      assert.deepEqual(await w.readBack(0, 1000), body.subarray(0, 1000))
      await assert.rejects(w.readBack(body.byteLength - 1, 1), 'no bytes past where the disk filled')
      assert.deepEqual(await w.commit(), { digest, size: body.byteLength, isKept: false })
      await assertNothingKept(f, digest)
      assert.deepEqual(events.map((e) => [e.type, e.digest]), [['full', digest]], 'one report that the store is full (eviction makes room), nothing added')
      await assert.rejects(w.write(body), 'closed after commit')
    }))

    test('defect 10: out of room, wrong bytes still fail the commit', withSmallStore(256 << 10, async (f) => {
      const good = bytesOf(1 << 20)
      const bad = Buffer.from(good)
      bad[900_000] = (bad[900_000] ?? 0) ^ 0xff
      const digest = digestOf(good)
      const w = await f.store.begin(digest, good.byteLength)
      await w.write(bad)
      assert.equal(w.isKeeping, false)
      await assert.rejects(w.commit(), DigestMismatchError)
      await w.abort()
      await assertNothingKept(f, digest)
    }))

    test('defect 10: the room left by a blob that did not fit is free for one that does', withSmallStore(256 << 10, async (f) => {
      const big = bytesOf(1 << 20, 3)
      const w = await f.store.begin(digestOf(big), big.byteLength)
      await w.write(big)
      await w.commit()
      const small = bytesOf(64 << 10, 4)
      const digest = digestOf(small)
      const v = await f.store.begin(digest, small.byteLength)
      await v.write(small)
      assert.equal(v.isKeeping, true)
      assert.deepEqual(await v.commit(), { digest, size: small.byteLength, isKept: true })
      assert.deepEqual(await f.store.read(digest), small)
    }))
  })
}
