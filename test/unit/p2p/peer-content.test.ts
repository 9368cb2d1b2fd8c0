// PeerContent with the Mirror: a peer whose copy of a blob does not verify is not asked for it again.
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Readable } from 'node:stream'
import { after, before, describe, test } from 'node:test'
import { pino } from 'pino'
import { Agent } from 'undici'
import { Metrics } from '../../../src/metrics/metrics.js'
import { Mirror, type MirrorRequest } from '../../../src/mirror/mirror.js'
import type { Digest } from '../../../src/oci/index.js'
import { MemoryRouterNetwork } from '../../../src/p2p/memory-router.js'
import { PEER_DISPATCHER_DEFAULTS, PeerContent } from '../../../src/p2p/peer-content.js'
import { PeerCredentials } from '../../../src/p2p/peer-credentials.js'
import { rendezvousOwner } from '../../../src/p2p/rendezvous.js'
import { MemoryBlobStore } from '../../../src/store/memory-blob-store.js'
import { MemoryTagIndex } from '../../../src/store/memory-tag-index.js'
import type { Upstream } from '../../../src/upstream/upstream.js'
import { blobOnlyUpstream } from '../../helpers/blob-only-upstream.js'

const digestOf = (b: Buffer): Digest => `sha256:${createHash('sha256').update(b).digest('hex')}` as Digest
const good = Buffer.alloc(300_000, 7)
const other = Buffer.alloc(1000, 9)
const digest = digestOf(good)
const otherDigest = digestOf(other)

/** A peer that serves every blob it is asked for, but the blob `digest` with wrong bytes of the right length. */
async function startBadPeer (): Promise<{ server: Server, address: string, asked: string[] }> {
  const asked: string[] = []
  const server = createServer((req, res) => {
    const d = /\/blobs\/(sha256:[0-9a-f]{64})/.exec(req.url ?? '')?.[1]
    asked.push(d ?? '?')
    const body = d === digest ? Buffer.alloc(good.byteLength, 1) : d === otherDigest ? other : undefined
    if (body === undefined) {
      res.writeHead(404).end()
      return
    }
    res.writeHead(200, { 'content-length': String(body.byteLength) }).end(body)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return { server, address: `127.0.0.1:${(server.address() as AddressInfo).port}`, asked }
}

function upstreamWith (blobs: Map<string, Buffer>, asked: string[]): Upstream {
  return blobOnlyUpstream(async (_registry, _repository, d) => {
    asked.push(d)
    const bytes = blobs.get(d)
    if (bytes === undefined) throw Object.assign(new Error('not found'), { code: 'ERR_UPSTREAM_NOT_FOUND' })
    return { status: 200, body: Readable.from([bytes]), length: bytes.byteLength, totalSize: bytes.byteLength }
  })
}

async function readAll (stream: Readable): Promise<Buffer> {
  const parts: Buffer[] = []
  for await (const chunk of stream) parts.push(chunk as Buffer)
  return Buffer.concat(parts)
}

void describe('a peer with a corrupt copy', () => {
  let peer: Awaited<ReturnType<typeof startBadPeer>>
  let content: PeerContent
  const dispatcher = new Agent(PEER_DISPATCHER_DEFAULTS)
  let mirror: Mirror
  let store: MemoryBlobStore
  const upstreamAsked: string[] = []
  const req: MirrorRequest = { registry: 'registry.test', repository: 'team/app', signal: new AbortController().signal }

  before(async () => {
    peer = await startBadPeer()
    const network = new MemoryRouterNetwork()
    const self = network.join({ id: 'self', httpAddress: '127.0.0.1:1' })
    const holder = network.join({ id: 'holder', httpAddress: peer.address })
    await holder.advertise([digest, otherDigest])
    const logger = pino({ level: 'silent' })
    content = new PeerContent({ router: self, dispatcher, credentials: new PeerCredentials(new Uint8Array(32).fill(1)), logger, isOwnerRouting: false, findBudgetMs: 1000 })
    store = new MemoryBlobStore()
    mirror = new Mirror({
      store, tags: new MemoryTagIndex(), upstream: upstreamWith(new Map([[digest, good], [otherDigest, other]]), upstreamAsked),
      remote: content, tagTtlMs: () => 60_000, metrics: new Metrics({ defaultMetrics: false }), logger,
    })
  })

  after(async () => {
    await dispatcher.close()
    await new Promise((resolve) => peer.server.close(resolve))
  })

  test('the first pull fails and keeps nothing; the next skips that peer for that digest and verifies', { timeout: 15_000 }, async () => {
    const first = await mirror.getBlob(req, digest)
    assert.equal(first.source, 'peer')
    await assert.rejects(readAll(await first.open()), (err: unknown) => (err as { code?: string }).code === 'ERR_DIGEST_MISMATCH')
    assert.equal(await store.stat(digest), undefined, 'nothing kept')
    assert.deepEqual(peer.asked, [digest])

    // distrust is recorded when the failed download settles, right after its readers saw the error
    let second = await mirror.getBlob(req, digest)
    for (let i = 0; i < 50 && second.source === 'peer'; i++) {
      await readAll(await second.open()).catch(() => {})
      await new Promise((resolve) => setTimeout(resolve, 20))
      second = await mirror.getBlob(req, digest)
    }
    assert.equal(second.source, 'upstream')
    assert.deepEqual(await readAll(await second.open()), good)
    assert.deepEqual(peer.asked, [digest], 'the corrupt peer was not asked again')
    assert.deepEqual(upstreamAsked, [digest])
  })

  test('the same peer is still asked for other digests', { timeout: 15_000 }, async () => {
    const result = await mirror.getBlob(req, otherDigest)
    assert.equal(result.source, 'peer')
    assert.deepEqual(await readAll(await result.open()), other)
    assert.deepEqual(peer.asked.at(-1), otherDigest)
  })
})

void test('holders are tried in random order, same zone first (many pullers spread over the peers streaming a blob)', { timeout: 15_000 }, async () => {
  const network = new MemoryRouterNetwork()
  const self = network.join({ id: 'self', httpAddress: '127.0.0.1:1', zone: 'z1' })
  const holders = [
    network.join({ id: 'near-1', httpAddress: '127.0.0.1:2', zone: 'z1' }),
    network.join({ id: 'near-2', httpAddress: '127.0.0.1:3', zone: 'z1' }),
    network.join({ id: 'far-1', httpAddress: '127.0.0.1:4', zone: 'z2' }),
    network.join({ id: 'far-2', httpAddress: '127.0.0.1:5', zone: 'z2' }),
    network.join({ id: 'far-3', httpAddress: '127.0.0.1:6' }),
  ]
  for (const h of holders) await h.advertise([digest])
  const dispatcher = new Agent(PEER_DISPATCHER_DEFAULTS)
  const content = new PeerContent({ router: self, dispatcher, credentials: new PeerCredentials(new Uint8Array(32).fill(1)), zone: 'z1', logger: pino({ level: 'silent' }), findBudgetMs: 1000 })
  try {
    const firsts = new Set<string>()
    const thirds = new Set<string>()
    for (let i = 0; i < 60; i++) {
      const found = await content.providers(digest, AbortSignal.timeout(5000))
      assert.equal(found.length, 5)
      assert.deepEqual(new Set(found.slice(0, 2).map((p) => p.id)), new Set(['near-1', 'near-2']), 'same zone first')
      firsts.add(found[0]?.id ?? '')
      thirds.add(found[2]?.id ?? '')
    }
    assert.deepEqual(firsts, new Set(['near-1', 'near-2']))
    assert.equal(thirds.size, 3, 'the other zones are shuffled too')
  } finally {
    await dispatcher.close()
  }
})

void describe('the owner of a digest that a peer already holds', () => {
  test('takes it from that peer, not from its upstream', { timeout: 15_000 }, async () => {
    const server = createServer((req, res) => {
      if (!(req.url ?? '').includes(digest)) return res.writeHead(404).end()
      res.writeHead(200, { 'content-length': String(good.byteLength) }).end(good)
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const dispatcher = new Agent(PEER_DISPATCHER_DEFAULTS)
    try {
      const network = new MemoryRouterNetwork()
      // An id for this node that makes it the digest's owner among the two.
      const selfId = Array.from({ length: 64 }, (_, i) => `self-${i}`).find((id) => rendezvousOwner(digest, [id, 'holder']) === id) ?? 'none'
      const self = network.join({ id: selfId, httpAddress: '127.0.0.1:1' })
      const holder = network.join({ id: 'holder', httpAddress: `127.0.0.1:${(server.address() as AddressInfo).port}` })
      await holder.advertise([digest])
      const logger = pino({ level: 'silent' })
      const content = new PeerContent({ router: self, dispatcher, credentials: new PeerCredentials(new Uint8Array(32).fill(1)), logger, findBudgetMs: 1000 })
      assert.equal(content.owner(digest), undefined, 'this node owns the digest')
      const upstreamAsked: string[] = []
      const mirror = new Mirror({
        store: new MemoryBlobStore(), tags: new MemoryTagIndex(), upstream: upstreamWith(new Map([[digest, good]]), upstreamAsked),
        remote: content, tagTtlMs: () => 60_000, metrics: new Metrics({ defaultMetrics: false }), logger,
      })
      const result = await mirror.getBlob({ registry: 'registry.test', repository: 'team/app', signal: new AbortController().signal }, digest)
      assert.equal(result.source, 'peer')
      assert.deepEqual(await readAll(await result.open()), good)
      assert.deepEqual(upstreamAsked, [], 'the upstream was not asked')
    } finally {
      await dispatcher.close()
      await new Promise((resolve) => server.close(resolve))
    }
  })
})
