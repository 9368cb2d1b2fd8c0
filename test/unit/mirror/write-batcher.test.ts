import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { WriteBatcher } from '../../../src/mirror/write-batcher.js'
import type { BlobWriter } from '../../../src/store/blob-store.js'
import type { Digest } from '../../../src/oci/index.js'

/** A writer whose every writev the test settles by hand; it records the bytes taken at call time. */
function manualWriter (): { writer: BlobWriter, calls: Array<{ bytes: number, resolve: () => void, reject: (e: Error) => void }>, taken: () => number } {
  const calls: Array<{ bytes: number, resolve: () => void, reject: (e: Error) => void }> = []
  let taken = 0
  const writer: BlobWriter = {
    digest: `sha256:${'0'.repeat(64)}` as Digest,
    get written () { return taken },
    isKeeping: true,
    write: async () => { throw new Error('not used') },
    writev: async (chunks) => {
      const bytes = chunks.reduce((n, c) => n + c.byteLength, 0)
      taken += bytes
      await new Promise<void>((resolve, reject) => { calls.push({ bytes, resolve, reject }) })
    },
    verify: () => {},
    readBack: async () => Buffer.alloc(0),
    commit: async () => ({ digest: `sha256:${'0'.repeat(64)}` as Digest, size: taken, isKept: true }),
    abort: async () => {},
  }
  return { writer, calls, taken: () => taken }
}

const MIB = 1 << 20
const tick = async (): Promise<void> => { await new Promise((resolve) => setImmediate(resolve)) }

void describe('WriteBatcher', () => {
  test('full batches go to the writer at once, overlapping; `written` moves over them in order only', async () => {
    const { writer, calls, taken } = manualWriter()
    const progress: number[] = []
    const b = new WriteBatcher(writer, (n) => progress.push(n))
    b.push(Buffer.alloc(MIB))
    b.push(Buffer.alloc(MIB))
    b.push(Buffer.alloc(1000))
    assert.equal(calls.length, 2, 'two batches handed over without waiting for the first')
    assert.equal(b.pendingBytes, 2 * MIB + 1000)
    calls[1]?.resolve()
    await tick()
    assert.equal(b.written, 0, 'the second batch is stored, but the first is not: nothing counts yet')
    calls[0]?.resolve()
    await tick()
    assert.equal(b.written, 2 * MIB)
    assert.deepEqual(progress, [MIB, 2 * MIB])
    // The short last batch: handed over (taken, so hashed) before it is stored.
    b.handOver()
    assert.equal(taken(), 2 * MIB + 1000)
    const flushed = b.flush()
    calls[2]?.resolve()
    await flushed
    assert.equal(b.written, 2 * MIB + 1000)
    assert.equal(b.pendingBytes, 0)
  })

  test('a failed batch fails the flush, and nothing after it counts as written', async () => {
    const { writer, calls } = manualWriter()
    const b = new WriteBatcher(writer, () => {})
    b.push(Buffer.alloc(MIB))
    b.push(Buffer.alloc(MIB))
    calls[0]?.reject(new Error('EIO'))
    calls[1]?.resolve()
    await assert.rejects(b.flush(), /EIO/)
    assert.equal(b.written, 0)
    assert.match(b.error?.message ?? '', /EIO/)
    b.push(Buffer.alloc(MIB))
    assert.equal(calls.length, 2, 'nothing more is written after an error')
    await b.settle()
  })
})
