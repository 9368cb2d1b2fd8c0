import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { PassThrough, Readable } from 'node:stream'
import { describe, test } from 'node:test'
import { pino } from 'pino'
import { BlobFetch } from '../../../src/mirror/blob-fetch.js'
import type { BlobSourceAttempt } from '../../../src/mirror/blob-source.js'
import { MemoryBudget } from '../../../src/mirror/memory-budget.js'
import { RecentChunks } from '../../../src/mirror/recent-chunks.js'
import type { Digest } from '../../../src/oci/index.js'
import { MemoryBlobStore } from '../../../src/store/memory-blob-store.js'
import { MemoryTagIndex } from '../../../src/store/memory-tag-index.js'
import { Metrics } from '../../../src/metrics/metrics.js'
import { Mirror } from '../../../src/mirror/mirror.js'
import { blobOnlyUpstream } from '../../helpers/blob-only-upstream.js'
import { waitFor } from '../../helpers/wait-for.js'

const logger = pino({ level: 'silent' })
const CHUNK = 64 << 10

function digestOf (bytes: Uint8Array): Digest {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}` as Digest
}

/** An upstream that sends the blob as fast as it is read, in 64 KiB chunks. */
function source (blob: Buffer): BlobSourceAttempt {
  return {
    origin: { kind: 'upstream', registry: 'r.example' },
    open: async (offset) => ({
      body: Readable.from((function * () { for (let i = offset; i < blob.byteLength; i += CHUNK) yield blob.subarray(i, i + CHUNK) })(), { objectMode: false }),
      totalSize: blob.byteLength,
    }),
  }
}

/** Reads a stream slowly: a turn of the event loop between chunks, so the download runs ahead of it. */
async function readSlowly (stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const c of stream) {
    chunks.push(c as Buffer)
    await new Promise((resolve) => setImmediate(resolve))
  }
  return Buffer.concat(chunks)
}

describe('MemoryBudget: one bound on what downloads hold, however many run', () => {
  test('RecentChunks over the budget drops every chunk on disk, never one that is not, and gives back what it held', () => {
    const budget = new MemoryBudget(100)
    const a = new RecentChunks(1000, budget)
    const b = new RecentChunks(1000, budget)
    for (let i = 0; i < 4; i++) a.push(Buffer.alloc(40))
    b.push(Buffer.alloc(40))
    assert.equal(budget.held, 200)
    // Under its own 1000 bytes, but the process is over: chunks up to what is durable go.
    a.trim(100)
    assert.equal(a.bytes, 80, 'the chunks ending at 40 and 80 go; the one ending at 120 is not on disk: it stays')
    assert.equal(a.start, 80)
    a.trim(160)
    assert.equal(a.bytes, 40, 'down to the budget: the last chunk stays')
    assert.equal(budget.held, 80)
    assert.equal(budget.isOver, false)
    a.trim(160)
    assert.equal(a.bytes, 40, 'under the budget and its own bound: nothing more goes')
    a.clear()
    b.clear()
    assert.equal(budget.held, 0)
  })

  test('50 downloads of 50 different blobs, each with a slow reader: memory held stays near the bound, every byte arrives', { timeout: 60_000 }, async () => {
    const count = 50
    const size = 3 << 20
    const maxBytes = 16 << 20
    const budget = new MemoryBudget(maxBytes)
    let peak = 0
    const blobs = Array.from({ length: count }, () => randomBytes(size))
    const store = new MemoryBlobStore()
    const fetches = blobs.map((blob) => new BlobFetch({
      digest: digestOf(blob), store, sources: [source(blob)], logger, timeoutMs: 60_000, memory: budget,
      onBytes: () => { peak = Math.max(peak, budget.held) },
    }))
    const bodies = await Promise.all(fetches.map(async (f) => await readSlowly(f.reader())))
    await Promise.all(fetches.map(async (f) => await f.done))
    for (const [i, f] of fetches.entries()) {
      assert.equal(f.state, 'done', f.error?.message)
      assert.ok(bodies[i]?.equals(blobs[i] as Buffer), `blob ${i}`)
    }
    // Without the bound every download keeps its whole 3 MiB (its own window is 8 MiB): 150 MiB.
    // With it: the bound, plus what each one's disk has not taken yet (256 KiB and a chunk).
    const limit = maxBytes + count * ((256 << 10) + CHUNK)
    assert.ok(peak <= limit, `peak ${(peak / 1048576).toFixed(1)} MiB held, bound ${(limit / 1048576).toFixed(1)} MiB`)
    assert.ok(peak > maxBytes / 2, `the test must load the budget (peak ${peak})`)
    assert.equal(budget.held, 0, 'everything given back once the downloads ended')
  })
})

test('a download the store had no room for gives its window back when its last reader goes', { timeout: 20_000 }, async () => {
  const budget = new MemoryBudget(1 << 30)
  const blob = randomBytes(4 << 20)
  const fetch = new BlobFetch({ digest: digestOf(blob), store: new MemoryBlobStore({ capacityBytes: 1 << 20 }), sources: [source(blob)], logger, timeoutMs: 20_000, memory: budget })
  const body = await readSlowly(fetch.reader())
  await fetch.done
  assert.ok(body.equals(blob))
  assert.equal(fetch.isKeeping, false, 'the store had no room')
  await waitFor(() => budget.held === 0, { timeoutMs: 5000, what: `the window to be given back (holds ${budget.held})` })
})

describe('Mirror.downloadMemoryBytes (the flotilla_download_memory_bytes gauge)', () => {
  test('counts what a running download holds, within the bound, and nothing once it ended', { timeout: 20_000 }, async () => {
    const blob = randomBytes(4 << 20)
    const digest = digestOf(blob)
    const body = new PassThrough()
    const upstream = blobOnlyUpstream(async () => ({ status: 200, body, length: blob.byteLength, totalSize: blob.byteLength }))
    const mirror = new Mirror({
      store: new MemoryBlobStore(), tags: new MemoryTagIndex(), upstream, tagTtlMs: () => 60_000,
      metrics: new Metrics({ defaultMetrics: false }), logger, downloadMemoryBytes: 1 << 20,
    })
    assert.equal(mirror.downloadMemoryBytes, 0)
    const result = await mirror.getBlob({ registry: 'registry.test', repository: 'team/app', signal: new AbortController().signal }, digest)
    // In 64 KiB chunks, as a socket gives them.
    for (let i = 0; i < 3 << 20; i += CHUNK) body.write(blob.subarray(i, i + CHUNK))
    const reading = readSlowly(await result.open())
    // Three quarters of the blob arrived and wait for the rest: the download holds some of them, never much past
    // the bound once its disk took them.
    const deadline = Date.now() + 10_000
    while (mirror.downloadMemoryBytes === 0 && Date.now() < deadline) await new Promise((resolve) => setImmediate(resolve))
    assert.ok(mirror.downloadMemoryBytes > 0, 'bytes held while the download runs')
    await waitFor(() => mirror.downloadMemoryBytes <= (1 << 20) + CHUNK, { timeoutMs: 10_000, what: `the download to keep within the bound (holds ${mirror.downloadMemoryBytes})` })
    assert.ok(mirror.downloadMemoryBytes > 0, 'what the bound allows is kept for readers')
    body.end(blob.subarray(3 << 20))
    assert.ok((await reading).equals(blob))
    await waitFor(() => mirror.downloadMemoryBytes === 0, { timeoutMs: 10_000, what: 'the download to give its bytes back' })
  })
})
