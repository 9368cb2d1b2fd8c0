import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { once } from 'node:events'
import { readdir } from 'node:fs/promises'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { PassThrough, type Readable } from 'node:stream'
import { describe, test } from 'node:test'
import { pino } from 'pino'
import { request } from 'undici'
import { BlobFetch } from '../../../src/mirror/blob-fetch.js'
import type { BlobSourceAttempt } from '../../../src/mirror/blob-source.js'
import type { Digest } from '../../../src/oci/index.js'
import type { BlobStore, BlobWriter } from '../../../src/store/blob-store.js'
import { DigestMismatchError } from '../../../src/store/errors.js'
import { FsBlobStore } from '../../../src/store/fs-blob-store.js'
import { MemoryBlobStore } from '../../../src/store/memory-blob-store.js'
import { bytesOf } from '../store/blob-store-conformance.js'
import { canMount, mountTmpfs } from '../../helpers/tmpfs-mount.js'
import { makeTempDir } from '../../helpers/temp-dir.js'
import { describeOrigin, type SourceOrigin } from '../../../src/mirror/blob-source.js'

const logger = pino({ level: 'silent' })
const TIMEOUT = { timeout: 10_000 }

function sha256 (bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex')
}

function digestOf (bytes: Uint8Array): Digest {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}` as Digest
}

/** A source whose body the test writes by hand; it records every offset it was asked for. */
class FakeSource implements BlobSourceAttempt {
  readonly offsets: number[] = []
  readonly #bodies: PassThrough[] = []
  readonly #waiting: Array<(b: PassThrough) => void> = []

  readonly origin: SourceOrigin

  /** `label` as logs name a source: `upstream:<registry>` or `peer:<address>`. */
  constructor (label: string, readonly options: { totalSize?: number, openError?: Error } = {}) {
    const [kind, rest = ''] = [label.slice(0, label.indexOf(':')), label.slice(label.indexOf(':') + 1)]
    this.origin = kind === 'upstream' ? { kind: 'upstream', registry: rest } : { kind: 'peer', address: rest, role: 'holder' }
  }

  async open (offset: number, signal: AbortSignal): Promise<{ body: Readable, totalSize?: number }> {
    this.offsets.push(offset)
    if (this.options.openError !== undefined) throw this.options.openError
    const body = new PassThrough()
    signal.addEventListener('abort', () => body.destroy(signal.reason as Error), { once: true })
    this.#bodies.push(body)
    this.#waiting.shift()?.(body)
    return { body, ...(this.options.totalSize === undefined ? {} : { totalSize: this.options.totalSize }) }
  }

  /** The body of the first open, once the fetch opened it. */
  body (): Promise<PassThrough> {
    const b = this.#bodies[0]
    return b !== undefined ? Promise.resolve(b) : new Promise((resolve) => this.#waiting.push(resolve))
  }
}

/** Resolves `until(n)` once the fetch has written n bytes, as reported through onBytes. */
class Progress {
  written = 0
  readonly byOrigin = new Map<string, number>()
  readonly #waiters: Array<{ n: number, resolve: () => void }> = []

  readonly onBytes = (origin: SourceOrigin, n: number): void => {
    this.written += n
    this.byOrigin.set(describeOrigin(origin), (this.byOrigin.get(describeOrigin(origin)) ?? 0) + n)
    for (const w of [...this.#waiters]) {
      if (this.written >= w.n) {
        this.#waiters.splice(this.#waiters.indexOf(w), 1)
        w.resolve()
      }
    }
  }

  until (n: number): Promise<void> {
    if (this.written >= n) return Promise.resolve()
    return new Promise((resolve) => this.#waiters.push({ n, resolve }))
  }
}

/** Consumes a reader in flowing mode, recording what arrived. */
class Collector {
  readonly chunks: Buffer[] = []
  received = 0
  readonly ended: Promise<Buffer>
  readonly #waiters: Array<{ n: number, resolve: () => void }> = []

  constructor (readonly stream: Readable) {
    stream.on('data', (chunk: Buffer) => {
      this.chunks.push(chunk)
      this.received += chunk.byteLength
      for (const w of [...this.#waiters]) {
        if (this.received >= w.n) {
          this.#waiters.splice(this.#waiters.indexOf(w), 1)
          w.resolve()
        }
      }
    })
    this.ended = new Promise((resolve, reject) => {
      stream.once('end', () => resolve(Buffer.concat(this.chunks)))
      stream.once('error', reject)
    })
    this.ended.catch(() => {})
  }

  until (n: number): Promise<void> {
    if (this.received >= n) return Promise.resolve()
    return new Promise((resolve) => this.#waiters.push({ n, resolve }))
  }

  bytes (): Buffer {
    return Buffer.concat(this.chunks)
  }
}

/** Lets every pending callback and I/O turn run, to check that something does NOT happen. */
async function settle (turns = 20): Promise<void> {
  for (let i = 0; i < turns; i++) await new Promise((resolve) => setImmediate(resolve))
}

interface FetchOpts { expectedSize?: number, store?: BlobStore, stallTimeoutMs?: number, readerStallTimeoutMs?: number }

function newFetch (blob: Buffer, sources: BlobSourceAttempt[], opts: FetchOpts = {}): { fetch: BlobFetch, store: BlobStore, progress: Progress, digest: Digest } {
  const store = opts.store ?? new MemoryBlobStore()
  const progress = new Progress()
  const digest = digestOf(blob)
  const { store: _store, ...rest } = opts
  const fetch = new BlobFetch({ digest, store, sources, logger, onBytes: progress.onBytes, timeoutMs: 30_000, ...rest })
  return { fetch, store, progress, digest }
}

/** A store whose commit waits for `release()` after it began (as a long fsync does); `committing` settles then. */
function slowCommitStore (inner: MemoryBlobStore): { store: BlobStore, release: () => void, committing: Promise<void> } {
  let release!: () => void
  const gate = new Promise<void>((resolve) => { release = resolve })
  let isCommitting!: () => void
  const committing = new Promise<void>((resolve) => { isCommitting = resolve })
  const store: BlobStore = {
    stat: async (d) => await inner.stat(d), open: async (d, r) => await inner.open(d, r), read: async (d) => await inner.read(d),
    delete: async (d) => await inner.delete(d), list: () => inner.list(), totalBytes: async () => await inner.totalBytes(), watch: (l) => inner.watch(l),
    pins: inner.pins,
    begin: async (digest, expectedSize) => {
      const w = await inner.begin(digest, expectedSize)
      const slow: BlobWriter = {
        digest: w.digest,
        get written () { return w.written },
        get isKeeping () { return w.isKeeping },
        write: async (c) => { await w.write(c) },
        writev: async (c) => { await w.writev(c) },
        verify: () => { w.verify() },
        readBack: async (p, n) => await w.readBack(p, n),
        commit: async () => {
          isCommitting()
          await gate
          return await w.commit()
        },
        abort: async () => { await w.abort() },
      }
      return slow
    },
  }
  return { store, release, committing }
}

/** Writes all of `blob` in 64 KiB chunks as the source's reader takes them (drain), then ends it. */
async function writeAll (body: PassThrough, blob: Buffer): Promise<void> {
  for (let off = 0; off < blob.byteLength; off += 64 << 10) {
    if (!body.write(blob.subarray(off, off + (64 << 10)))) await new Promise((resolve) => body.once('drain', resolve))
  }
  body.end()
}

/** Writes `blob[from, to)` in `step`-byte chunks, waiting for the fetch to take each one. */
async function feed (body: PassThrough, progress: Progress, blob: Buffer, from: number, to: number, step: number): Promise<void> {
  for (let off = from; off < to; off += step) {
    const end = Math.min(off + step, to)
    body.write(blob.subarray(off, end))
    await progress.until(progress.written + (end - off))
  }
}

describe('BlobFetch', () => {
  test('two readers get identical full bytes while the bytes trickle in', TIMEOUT, async () => {
    const blob = bytesOf(300_000)
    const source = new FakeSource('upstream:test', { totalSize: blob.byteLength })
    const { fetch, store, progress, digest } = newFetch(blob, [source])
    const body = await source.body()
    await fetch.ready
    assert.equal(fetch.size, blob.byteLength)
    const a = new Collector(fetch.reader())
    const b = new Collector(fetch.reader())

    body.write(blob.subarray(0, 100_000))
    await Promise.all([a.until(100_000), b.until(100_000)])
    assert.equal(fetch.state, 'running', 'readers are served before the download ends')
    assert.deepEqual(a.bytes(), blob.subarray(0, 100_000))

    await feed(body, progress, blob, 100_000, blob.byteLength, 50_000)
    body.end()
    const [ra, rb] = await Promise.all([a.ended, b.ended])
    assert.deepEqual(ra, blob)
    assert.deepEqual(rb, blob)
    await fetch.done
    assert.equal(fetch.state, 'done')
    assert.deepEqual(await store.read(digest), blob)
    assert.deepEqual(source.offsets, [0], 'one upstream request for both readers')
  })

  test('a late reader after completion gets the bytes (whole and ranged) from the store', TIMEOUT, async () => {
    const blob = bytesOf(50_000)
    const source = new FakeSource('upstream:test')
    const { fetch } = newFetch(blob, [source], { expectedSize: blob.byteLength })
    const body = await source.body()
    body.end(blob)
    await fetch.done
    assert.equal(fetch.state, 'done')
    assert.deepEqual(await new Collector(fetch.reader()).ended, blob)
    assert.deepEqual(await new Collector(fetch.reader({ start: 49_990, end: 49_999 })).ended, blob.subarray(49_990))
    assert.deepEqual(await new Collector(fetch.reader({ start: 0, end: 0 })).ended, blob.subarray(0, 1))
    assert.deepEqual(source.offsets, [0])
  })

  test('a reader that starts while a blob larger than the memory window is committed (fsync) gets all of it', TIMEOUT, async () => {
    const blob = bytesOf(12 << 20)
    const inner = new MemoryBlobStore()
    const { store, release, committing } = slowCommitStore(inner)
    const source = new FakeSource('upstream:test', { totalSize: blob.byteLength })
    const { fetch } = newFetch(blob, [source], { store })
    const body = await source.body()
    body.end(blob)
    await committing
    const late = new Collector(fetch.reader())
    release()
    assert.deepEqual(await late.ended, blob)
  })

  test('a reader gets its last byte once the bytes verified, before the store has committed them (fsync)', TIMEOUT, async () => {
    const blob = bytesOf(3 << 20)
    const inner = new MemoryBlobStore()
    const { store, release } = slowCommitStore(inner)
    const source = new FakeSource('upstream:test', { totalSize: blob.byteLength })
    const { fetch } = newFetch(blob, [source], { store })
    const body = await source.body()
    const reader = new Collector(fetch.reader())
    body.end(blob)
    assert.deepEqual(await reader.ended, blob, 'the whole blob while the commit still waits')
    assert.equal(fetch.state, 'running')
    release()
    await fetch.done
    assert.equal(fetch.state, 'done')
    assert.deepEqual(await inner.read(digestOf(blob)), blob)
  })

  test('bytes that do not hash to the digest: a reader never gets its last byte, it errors', TIMEOUT, async () => {
    const blob = bytesOf(100_000)
    const wrong = Buffer.from(blob)
    wrong[500] = (wrong[500] ?? 0) ^ 1
    const source = new FakeSource('upstream:test', { totalSize: blob.byteLength })
    const { fetch } = newFetch(blob, [source])
    const body = await source.body()
    const reader = new Collector(fetch.reader())
    body.end(wrong)
    await assert.rejects(reader.ended)
    assert.ok(reader.received < blob.byteLength, `received ${reader.received}`)
    assert.equal(fetch.state, 'failed')
  })

  test('readers with ranges get exactly their range, the last byte only after verification', TIMEOUT, async () => {
    const blob = bytesOf(300_000)
    const source = new FakeSource('upstream:test', { totalSize: blob.byteLength })
    const { fetch, progress } = newFetch(blob, [source])
    const body = await source.body()
    await fetch.ready
    const early = new Collector(fetch.reader({ start: 1000, end: 1999 }))
    const tail = new Collector(fetch.reader({ start: 250_000, end: 299_999 }))
    const middle = new Collector(fetch.reader({ start: 99_999, end: 100_000 }))

    await feed(body, progress, blob, 0, 200_000, 40_000)
    await early.until(999)
    await settle()
    assert.equal(early.received, 999, 'the range is complete but its last byte waits for the digest')
    assert.equal(tail.received, 0)

    await feed(body, progress, blob, 200_000, blob.byteLength, 40_000)
    body.end()
    assert.deepEqual(await early.ended, blob.subarray(1000, 2000))
    assert.deepEqual(await tail.ended, blob.subarray(250_000))
    assert.deepEqual(await middle.ended, blob.subarray(99_999, 100_001))
  })

  test('the last byte is held back until the source ends and the digest verified', TIMEOUT, async () => {
    const blob = bytesOf(1000)
    const source = new FakeSource('upstream:test')
    const { fetch, progress } = newFetch(blob, [source], { expectedSize: blob.byteLength })
    const body = await source.body()
    const reader = new Collector(fetch.reader())
    body.write(blob)
    await progress.until(blob.byteLength)
    await reader.until(blob.byteLength - 1)
    await settle()
    assert.equal(reader.received, blob.byteLength - 1, 'every byte arrived but the last one is held back')
    assert.equal(fetch.state, 'running')

    body.end()
    assert.deepEqual(await reader.ended, blob)
    assert.equal(fetch.state, 'done')
  })

  test('a corrupt source: every reader errors, no reader saw a complete blob, nothing is kept', TIMEOUT, async () => {
    const blob = bytesOf(100_000)
    const corrupt = Buffer.from(blob)
    corrupt[50_000] = (corrupt[50_000] ?? 0) ^ 0x01
    const source = new FakeSource('peer:a', { totalSize: blob.byteLength })
    const events: string[] = []
    const store = new MemoryBlobStore()
    store.watch((e) => events.push(e.type))
    const { fetch, progress, digest } = newFetch(blob, [source], { store })
    const body = await source.body()
    await fetch.ready
    const readers = [new Collector(fetch.reader()), new Collector(fetch.reader()), new Collector(fetch.reader({ start: 90_000, end: 99_999 }))]

    await feed(body, progress, corrupt, 0, corrupt.byteLength, 25_000)
    body.end()
    for (const r of readers) {
      await assert.rejects(r.ended, (err: unknown) => err instanceof DigestMismatchError && err.expected === digest)
    }
    const [whole1, whole2, ranged] = readers as [Collector, Collector, Collector]
    assert.ok(whole1.received < blob.byteLength && whole2.received < blob.byteLength, 'the last byte never went out')
    assert.ok(ranged.received < 10_000)
    await fetch.done
    assert.equal(fetch.state, 'failed')
    assert.equal((fetch.error as DigestMismatchError | undefined)?.code, 'ERR_DIGEST_MISMATCH')
    assert.equal(await store.stat(digest), undefined)
    assert.deepEqual(events, [])
    await assert.rejects(new Collector(fetch.reader()).ended, DigestMismatchError, 'a reader after the failure errors too')
  })

  test('a source that breaks mid-stream: the next source is asked from the offset reached', TIMEOUT, async () => {
    const blob = bytesOf(200_000)
    const first = new FakeSource('peer:a', { totalSize: blob.byteLength })
    const second = new FakeSource('upstream:test', { totalSize: blob.byteLength })
    const { fetch, store, progress, digest } = newFetch(blob, [first, second])
    const reader = new Collector(fetch.reader())

    const body1 = await first.body()
    await feed(body1, progress, blob, 0, 70_000, 35_000)
    body1.destroy(new Error('connection reset by peer'))

    const body2 = await second.body()
    assert.deepEqual(second.offsets, [70_000])
    body2.end(blob.subarray(70_000))
    assert.deepEqual(await reader.ended, blob)
    await fetch.done
    assert.equal(fetch.state, 'done')
    assert.deepEqual(await store.read(digest), blob)
    assert.deepEqual(Object.fromEntries(progress.byOrigin), { 'peer:a': 70_000, 'upstream:test': 130_000 })
    assert.deepEqual(first.offsets, [0])
  })

  test('a source that ends early (size known) also resumes on the next one', TIMEOUT, async () => {
    const blob = bytesOf(10_000)
    const first = new FakeSource('peer:a')
    const second = new FakeSource('upstream:test')
    const { fetch, store, digest } = newFetch(blob, [first, second], { expectedSize: blob.byteLength })
    ;(await first.body()).end(blob.subarray(0, 4096))
    ;(await second.body()).end(blob.subarray(4096))
    await fetch.done
    assert.equal(fetch.state, 'done')
    assert.deepEqual(second.offsets, [4096])
    assert.deepEqual(await store.read(digest), blob)
  })

  test('a source that cannot be opened is skipped; the next starts at 0', TIMEOUT, async () => {
    const blob = bytesOf(10_000)
    const down = new FakeSource('peer:a', { openError: new Error('ECONNREFUSED') })
    const up = new FakeSource('upstream:test')
    const { fetch, store, digest } = newFetch(blob, [down, up], { expectedSize: blob.byteLength })
    ;(await up.body()).end(blob)
    await fetch.ready
    await fetch.done
    assert.equal(fetch.state, 'done')
    assert.deepEqual(down.offsets, [0])
    assert.deepEqual(up.offsets, [0])
    assert.deepEqual(await store.read(digest), blob)
  })

  test('when every source fails: ready rejects with the last error, readers error, nothing is kept', TIMEOUT, async () => {
    const blob = bytesOf(1000)
    const a = new FakeSource('peer:a', { openError: new Error('first down') })
    const b = new FakeSource('upstream:test', { openError: new Error('second down') })
    const { fetch, store, digest } = newFetch(blob, [a, b], { expectedSize: blob.byteLength })
    const reader = new Collector(fetch.reader())
    await assert.rejects(fetch.ready, /second down/)
    await assert.rejects(reader.ended, /second down/)
    await fetch.done
    assert.equal(fetch.state, 'failed')
    assert.equal(await store.stat(digest), undefined)
  })

  test('the fetch continues when every reader is destroyed, and the blob is kept', TIMEOUT, async () => {
    const blob = bytesOf(120_000)
    const source = new FakeSource('upstream:test', { totalSize: blob.byteLength })
    const { fetch, store, progress, digest } = newFetch(blob, [source])
    const body = await source.body()
    await fetch.ready
    const a = new Collector(fetch.reader())
    const b = new Collector(fetch.reader({ start: 0, end: 59_999 }))
    body.write(blob.subarray(0, 40_000))
    await Promise.all([a.until(40_000), b.until(40_000)])
    a.stream.destroy()
    b.stream.destroy()

    await feed(body, progress, blob, 40_000, blob.byteLength, 40_000)
    body.end()
    await fetch.done
    assert.equal(fetch.state, 'done')
    assert.deepEqual(await store.read(digest), blob)
    assert.deepEqual(source.offsets, [0])
  })

  test('abort stops the download: readers fail and nothing is kept', TIMEOUT, async () => {
    const blob = bytesOf(10_000)
    const source = new FakeSource('upstream:test')
    const { fetch, store, progress, digest } = newFetch(blob, [source], { expectedSize: blob.byteLength })
    const body = await source.body()
    const reader = new Collector(fetch.reader())
    await feed(body, progress, blob, 0, 5000, 5000)
    fetch.abort(new Error('shutting down'))
    await assert.rejects(reader.ended, /shutting down/)
    await fetch.done
    assert.equal(fetch.state, 'failed')
    assert.equal(await store.stat(digest), undefined)
  })

  // ---- defect 10: a store with no room for the blob ----

  /** Bytes the fetch may run ahead of its slowest reader when nothing is kept (RECENT_BYTES), plus slack for a chunk in flight. */
  const WINDOW = 8 << 20
  const SLACK = 1 << 20

  test('defect 10: the store runs out of room mid-blob: readers get it whole and verified, one request upstream, nothing kept', { timeout: 30_000 }, async () => {
    const blob = bytesOf(20 << 20)
    const first = new FakeSource('upstream:test', { totalSize: blob.byteLength })
    const second = new FakeSource('upstream:test')
    const store = new MemoryBlobStore({ capacityBytes: 3 << 20 })
    const { fetch, progress, digest } = newFetch(blob, [first, second], { store })
    const body = await first.body()
    await fetch.ready
    const fast = new Collector(fetch.reader())
    // A reader that does not read yet: nothing is on disk, so the source must wait for it.
    const slow = fetch.reader()
    const feeding = writeAll(body, blob)
    await progress.until(WINDOW)
    await settle(50)
    assert.equal(fetch.isKeeping, false, 'the store had no room')
    assert.ok(progress.written <= WINDOW + SLACK, `the source is held back to the slowest reader (took ${progress.written} bytes)`)
    assert.equal(fetch.canServe({ start: blob.byteLength - 10, end: blob.byteLength - 1 }), true)
    const slowCollector = new Collector(slow)
    await feeding
    const [a, b] = await Promise.all([fast.ended, slowCollector.ended])
    assert.equal(digestOf(a), digest)
    assert.equal(digestOf(b), digest)
    await fetch.done
    assert.equal(fetch.state, 'done')
    assert.equal(fetch.isKeeping, false)
    assert.equal(await store.stat(digest), undefined)
    assert.equal(await store.totalBytes(), 0)
    assert.deepEqual(first.offsets, [0])
    assert.deepEqual(second.offsets, [], 'no second request for bytes already received')
  })

  test('defect 10: FsBlobStore on a disk that fills up mid-blob: streamed verified, the last byte held back, nothing left', { ...TIMEOUT, skip: !canMount() && 'needs root to mount a tmpfs' }, async () => {
    const disk = await mountTmpfs('blob-fetch-full', '1m')
    try {
      const store = await FsBlobStore.open(disk.path)
      const blob = bytesOf(3 << 20)
      const first = new FakeSource('upstream:test', { totalSize: blob.byteLength })
      const second = new FakeSource('upstream:test')
      const { fetch, progress, digest } = newFetch(blob, [first, second], { store })
      const body = await first.body()
      const reader = new Collector(fetch.reader())
      await feed(body, progress, blob, 0, blob.byteLength, 256 << 10)
      await reader.until(blob.byteLength - 1)
      await settle()
      assert.equal(reader.received, blob.byteLength - 1, 'the last byte waits for the digest even when nothing is kept')
      body.end()
      assert.equal(digestOf(await reader.ended), digest)
      await fetch.done
      assert.equal(fetch.state, 'done')
      assert.equal(fetch.isKeeping, false)
      assert.equal(await store.stat(digest), undefined)
      assert.deepEqual(await readdir(join(disk.path, 'tmp')), [])
      assert.deepEqual(second.offsets, [])
    } finally {
      await disk.cleanup()
    }
  })

  test('a blob not kept and corrupt: every reader errors before its last byte', TIMEOUT, async () => {
    const blob = bytesOf(2 << 20)
    const corrupt = Buffer.from(blob)
    corrupt[1 << 20] = (corrupt[1 << 20] ?? 0) ^ 0x01
    const source = new FakeSource('upstream:test', { totalSize: blob.byteLength })
    const { fetch, progress } = newFetch(blob, [source], { store: new MemoryBlobStore({ capacityBytes: 1 << 10 }) })
    const body = await source.body()
    await fetch.ready
    const readers = [new Collector(fetch.reader()), new Collector(fetch.reader({ start: 100, end: blob.byteLength - 1 }))]
    await feed(body, progress, corrupt, 0, corrupt.byteLength, 256 << 10)
    body.end()
    for (const r of readers) await assert.rejects(r.ended, DigestMismatchError)
    const [whole, ranged] = readers as [Collector, Collector]
    assert.ok(whole.received < blob.byteLength && ranged.received < blob.byteLength - 100, 'no reader got its last byte')
    await fetch.done
    assert.equal(fetch.state, 'failed')
  })

  test('defect 10: a reader that needs bytes no longer held errors at once (ERR_BLOB_WINDOW_PASSED)', { timeout: 30_000 }, async () => {
    const blob = bytesOf(12 << 20)
    const source = new FakeSource('upstream:test', { totalSize: blob.byteLength })
    const { fetch, progress } = newFetch(blob, [source], { store: new MemoryBlobStore({ capacityBytes: 1 << 20 }) })
    const body = await source.body()
    await fetch.ready
    const reader = new Collector(fetch.reader())
    await feed(body, progress, blob, 0, 11 << 20, 256 << 10)
    await reader.until((11 << 20) - 1)
    // Past what the writer stored before the 1 MiB store filled, and behind the 8 MiB in memory.
    assert.equal(fetch.canServe({ start: 2 << 20, end: (2 << 20) + 10 }), false)
    await assert.rejects(new Collector(fetch.reader({ start: 2 << 20, end: (2 << 20) + 10 })).ended, { code: 'ERR_BLOB_WINDOW_PASSED' })
    const late = new Collector(fetch.reader({ start: 10 << 20, end: blob.byteLength - 1 }))
    await feed(body, progress, blob, 11 << 20, blob.byteLength, 256 << 10)
    body.end()
    assert.deepEqual(await late.ended, blob.subarray(10 << 20))
    assert.deepEqual(await reader.ended, blob)
  })

  test('a reader that fell behind the memory window when the disk filled gets every byte (the writer keeps what it wrote)', { timeout: 30_000 }, async () => {
    const blob = bytesOf(20 << 20)
    const source = new FakeSource('upstream:test', { totalSize: blob.byteLength })
    const { fetch, progress } = newFetch(blob, [source], { store: new MemoryBlobStore({ capacityBytes: 10 << 20 }) })
    const body = await source.body()
    await fetch.ready
    // Registered at byte 0 and not reading yet: more than the 8 MiB in memory go by while the store keeps them.
    const slow = fetch.reader()
    const feeding = feed(body, progress, blob, 0, 12 << 20, 256 << 10)
    const deadline = Date.now() + 10_000
    while (fetch.isKeeping && Date.now() < deadline) await new Promise((resolve) => setImmediate(resolve))
    assert.equal(fetch.isKeeping, false, 'the store filled')
    // Its first bytes left memory; the writer still has them.
    const reader = new Collector(slow)
    await feeding
    await feed(body, progress, blob, 12 << 20, blob.byteLength, 256 << 10)
    body.end()
    assert.deepEqual(await reader.ended, blob)
  })

  test('defect 10: a store error that is not about room fails the fetch; no other source is asked', TIMEOUT, async () => {
    const blob = bytesOf(3 << 20)
    const inner = new MemoryBlobStore()
    const failing: BlobStore = Object.assign(Object.create(inner) as BlobStore, {
      begin: async (d: Digest, size?: number) => failAfter(await inner.begin(d, size), 1 << 20, 'EIO'),
    })
    const first = new FakeSource('upstream:test', { totalSize: blob.byteLength })
    const second = new FakeSource('upstream:test')
    const { fetch, progress } = newFetch(blob, [first, second], { store: failing })
    const body = await first.body()
    const reader = new Collector(fetch.reader())
    void feed(body, progress, blob, 0, blob.byteLength, 256 << 10).catch(() => {})
    await assert.rejects(reader.ended, { code: 'EIO' })
    await fetch.done
    assert.equal(fetch.state, 'failed')
    assert.deepEqual(second.offsets, [])
  })

  // ---- defect 6: stalls ----

  test('defect 6: a source that stops sending is dropped after stallTimeoutMs; the next resumes from the byte reached', TIMEOUT, async () => {
    const blob = bytesOf(200_000)
    const first = new FakeSource('upstream:test', { totalSize: blob.byteLength })
    const second = new FakeSource('upstream:test', { totalSize: blob.byteLength })
    const { fetch, store, progress, digest } = newFetch(blob, [first, second], { stallTimeoutMs: 200 })
    const reader = new Collector(fetch.reader())
    await feed(await first.body(), progress, blob, 0, 70_000, 35_000)
    const stalledAt = Date.now()
    const body2 = await second.body()
    const waited = Date.now() - stalledAt
    assert.ok(waited >= 150 && waited < 1500, `dropped after ${waited} ms`)
    assert.deepEqual(second.offsets, [70_000])
    body2.end(blob.subarray(70_000))
    assert.deepEqual(await reader.ended, blob)
    await fetch.done
    assert.deepEqual(await store.read(digest), blob)
  })

  test('defect 6: a reader that gets no byte for readerStallTimeoutMs is cut; the download goes on and is kept', TIMEOUT, async () => {
    const blob = bytesOf(100_000)
    const source = new FakeSource('upstream:test', { totalSize: blob.byteLength })
    const { fetch, store, progress, digest } = newFetch(blob, [source], { stallTimeoutMs: 5000, readerStallTimeoutMs: 300 })
    const body = await source.body()
    const reader = new Collector(fetch.reader())
    await feed(body, progress, blob, 0, 40_000, 40_000)
    await reader.until(40_000)
    const started = Date.now()
    await assert.rejects(reader.ended, { code: 'ERR_BLOB_STALLED' })
    const waited = Date.now() - started
    assert.ok(waited >= 250 && waited < 2000, `cut after ${waited} ms`)
    assert.equal(fetch.state, 'running')
    body.end(blob.subarray(40_000))
    await fetch.done
    assert.deepEqual(await store.read(digest), blob)
  })

  test('a source held back by a slow reader (nothing kept) is not taken for a stalled one', { timeout: 30_000 }, async () => {
    const blob = bytesOf(12 << 20)
    const first = new FakeSource('upstream:test', { totalSize: blob.byteLength })
    const second = new FakeSource('upstream:test')
    const { fetch, progress, digest } = newFetch(blob, [first, second], { store: new MemoryBlobStore({ capacityBytes: 0 }), stallTimeoutMs: 100, readerStallTimeoutMs: 60_000 })
    const body = await first.body()
    await fetch.ready
    const slow = fetch.reader()
    const feeding = writeAll(body, blob)
    await progress.until(WINDOW)
    await new Promise((resolve) => setTimeout(resolve, 500))
    const reader = new Collector(slow)
    await feeding
    assert.equal(digestOf(await reader.ended), digest)
    assert.deepEqual(second.offsets, [])
  })
})

/** A writer whose writes fail with `code` (a store failure that is not about room) once `limit` bytes went in. */
function failAfter (w: BlobWriter, limit: number, code: string): BlobWriter {
  const writev = async (chunks: readonly Uint8Array[]): Promise<void> => {
    if (w.written >= limit) throw Object.assign(new Error(`simulated ${code}`), { code })
    await w.writev(chunks)
  }
  return Object.assign(Object.create(w) as BlobWriter, { writev, write: async (c: Uint8Array) => { await writev([c]) } })
}

void describe('BlobFetch: a write error', () => {
  test('that happens after the last chunk arrived fails the download with that error, not as a digest mismatch', TIMEOUT, async () => {
    const blob = bytesOf((1 << 20) + 10)
    const inner = new MemoryBlobStore()
    const store: BlobStore = Object.assign(Object.create(inner) as MemoryBlobStore, {
      begin: async (digest: Digest, size?: number) => {
        const w = await inner.begin(digest, size)
        return Object.assign(Object.create(w) as BlobWriter, {
          writev: async () => { throw Object.assign(new Error('EIO: i/o error, write'), { code: 'EIO' }) },
          abort: async () => { await w.abort() },
        })
      },
    })
    const source = new FakeSource('upstream:test', { totalSize: blob.byteLength })
    const { fetch } = newFetch(blob, [source], { store })
    const body = await source.body()
    body.write(blob)
    // The first batch's write fails while the source has not ended yet.
    await settle()
    body.end()
    await fetch.done
    assert.equal(fetch.state, 'failed')
    assert.match(fetch.error?.message ?? '', /EIO/)
  })
})

void describe('BlobFetch reader.sendTo (the client fast path)', () => {
  /** Serves `fetch.reader()` with sendTo on each request; each send's outcome is kept. */
  async function serve (fetch: BlobFetch): Promise<{ server: Server, url: string, outcomes: Array<Promise<{ ok: boolean, sent: number }>> }> {
    const outcomes: Array<Promise<{ ok: boolean, sent: number }>> = []
    const server = createServer((req, res) => {
      const start = Number(req.headers['x-start'] ?? 0)
      outcomes.push((async () => {
        const reader = fetch.reader(start === 0 ? undefined : { start, end: (fetch.size ?? 0) - 1 })
        res.writeHead(200)
        let sent = 0
        try {
          await reader.sendTo(res, (n) => { sent += n })
          return { ok: true, sent }
        } catch {
          res.destroy()
          return { ok: false, sent }
        }
      })())
    }).listen(0, '127.0.0.1')
    await once(server, 'listening')
    return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`, outcomes }
  }

  test('clients get every byte as they arrive, across the hand-over to the committed file, none before verification', TIMEOUT, async (t) => {
    const blob = bytesOf(20 << 20)
    const dir = await makeTempDir('sendto')
    t.after(async () => { await dir.cleanup() })
    const store = await FsBlobStore.open(join(dir.path, 'store'))
    const source = new FakeSource('upstream:test', { totalSize: blob.byteLength })
    const { fetch, progress } = newFetch(blob, [source], { store })
    const { server, url, outcomes } = await serve(fetch)
    t.after(() => { server.close() })
    const body = await source.body()
    await fetch.ready
    const early = request(url, { signal: AbortSignal.timeout(9000) }).then(async (r) => Buffer.from(await r.body.arrayBuffer()))
    await feed(body, progress, blob, 0, 12 << 20, 1 << 20)
    // One joins mid-download from an offset, while the window already moved past the start.
    const mid = request(url, { headers: { 'x-start': String(5 << 20) }, signal: AbortSignal.timeout(9000) }).then(async (r) => Buffer.from(await r.body.arrayBuffer()))
    await feed(body, progress, blob, 12 << 20, blob.byteLength, 1 << 20)
    body.end()
    assert.equal(sha256(await early), sha256(blob))
    assert.equal(sha256(await mid), sha256(blob.subarray(5 << 20)))
    await fetch.done
    // And one after the commit: it is handed the store's file.
    const late = await request(url, { signal: AbortSignal.timeout(9000) }).then(async (r) => Buffer.from(await r.body.arrayBuffer()))
    assert.equal(sha256(late), sha256(blob))
    assert.deepEqual((await Promise.all(outcomes)).map((o) => [o.ok, o.sent]), [[true, blob.byteLength], [true, blob.byteLength - (5 << 20)], [true, blob.byteLength]])
  })

  test('a client that goes away: the send rejects, the reader is let go, the download goes on', TIMEOUT, async (t) => {
    const blob = bytesOf(4 << 20)
    const source = new FakeSource('upstream:test', { totalSize: blob.byteLength })
    const { fetch, progress } = newFetch(blob, [source])
    const { server, url, outcomes } = await serve(fetch)
    t.after(() => { server.close() })
    const body = await source.body()
    const gone = new AbortController()
    const client = request(url, { signal: gone.signal }).then(async (r) => { for await (const c of r.body) { assert.ok(c); gone.abort() } }).catch(() => {})
    await feed(body, progress, blob, 0, 1 << 20, 256 << 10)
    await client
    await feed(body, progress, blob, 1 << 20, blob.byteLength, 256 << 10)
    body.end()
    const [outcome] = await Promise.all(outcomes)
    assert.equal(outcome?.ok, false)
    await fetch.done
    assert.equal(fetch.state, 'done')
  })
})
