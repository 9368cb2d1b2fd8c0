// What the status page reads of a running BlobFetch: bytes received, start time, the source read now and the
// registry asked — getters only, checked while bytes trickle in from a hand-fed source, then from the next one.
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { PassThrough, type Readable } from 'node:stream'
import { describe, test } from 'node:test'
import { pino } from 'pino'
import { BlobFetch } from '../../../src/mirror/blob-fetch.js'
import { describeOrigin, type BlobSourceAttempt, type SourceOrigin } from '../../../src/mirror/blob-source.js'
import type { Digest } from '../../../src/oci/index.js'
import { MemoryBlobStore } from '../../../src/store/memory-blob-store.js'

/** A source whose body the test writes; `open` hands over a fresh PassThrough. */
function handFed (origin: SourceOrigin, totalSize: number): BlobSourceAttempt & { body: Promise<PassThrough> } {
  let give!: (b: PassThrough) => void
  const body = new Promise<PassThrough>((resolve) => { give = resolve })
  return {
    origin,
    body,
    open: async (_offset: number, signal: AbortSignal): Promise<{ body: Readable, totalSize: number }> => {
      const b = new PassThrough()
      signal.addEventListener('abort', () => b.destroy(signal.reason as Error), { once: true })
      give(b)
      return { body: b, totalSize }
    },
  }
}

async function until (fn: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !fn(); i++) await new Promise((resolve) => setTimeout(resolve, 2))
  assert.ok(fn())
}

void describe('BlobFetch status getters', () => {
  void test('bytesReceived grows as bytes arrive; source is the one read now; registry from the upstream attempt', { timeout: 10_000 }, async () => {
    const blob = Buffer.alloc(100_000, 7)
    const digest = `sha256:${createHash('sha256').update(blob).digest('hex')}` as Digest
    const peer = handFed({ kind: 'peer', address: '10.0.0.2:5000', role: 'holder' }, blob.byteLength)
    const upstream = handFed({ kind: 'upstream', registry: 'docker.io' }, blob.byteLength)
    const before = Date.now()
    const fetch = new BlobFetch({ digest, store: new MemoryBlobStore(), sources: [peer, upstream], logger: pino({ level: 'silent' }), timeoutMs: 10_000 })
    assert.ok(fetch.startedAt >= before && fetch.startedAt <= Date.now())
    assert.equal(fetch.registry, 'docker.io')
    assert.equal(fetch.bytesReceived, 0)

    const fromPeer = await peer.body
    fromPeer.write(blob.subarray(0, 30_000))
    await until(() => fetch.bytesReceived === 30_000)
    assert.equal(describeOrigin(fetch.source ?? { kind: 'peers' }), 'peer:10.0.0.2:5000')
    // The peer breaks off: the download resumes upstream, and says so.
    fromPeer.destroy(new Error('peer went away'))
    const fromUpstream = await upstream.body
    fromUpstream.write(blob.subarray(30_000, 60_000))
    await until(() => fetch.bytesReceived === 60_000)
    assert.equal(describeOrigin(fetch.source ?? { kind: 'peers' }), 'upstream:docker.io')
    fromUpstream.end(blob.subarray(60_000))
    await fetch.done
    assert.equal(fetch.state, 'done')
    assert.equal(fetch.bytesReceived, blob.byteLength)
  })

  void test('a download from peers only has no registry', () => {
    const peer = handFed({ kind: 'peers' }, 1)
    const fetch = new BlobFetch({ digest: `sha256:${'0'.repeat(64)}` as Digest, store: new MemoryBlobStore(), sources: [peer], logger: pino({ level: 'silent' }), timeoutMs: 1000 })
    assert.equal(fetch.registry, undefined)
    assert.equal(fetch.source, undefined)
    fetch.abort(new Error('test over'))
  })
})
