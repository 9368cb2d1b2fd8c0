// Three agents in this process, each a real HTTP server with its own Mirror and PeerContent on one
// MemoryRouter network: the digest's owner streams it to one peer (fan-out 1) and sends the next peer to
// that one, which streams its own download on; if that peer is gone, the owner serves the asker itself.
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { createServer, type Server } from 'node:http'
import { afterEach, describe, test } from 'node:test'
import { pino } from 'pino'
import { Agent, request } from 'undici'
import { Metrics } from '../../../src/metrics/metrics.js'
import { Mirror } from '../../../src/mirror/mirror.js'
import type { Digest } from '../../../src/oci/index.js'
import { MemoryRouterNetwork } from '../../../src/p2p/memory-router.js'
import { HttpPeerPolicy } from '../../../src/p2p/http-peer-policy.js'
import { OwnerFanout } from '../../../src/p2p/owner-fanout.js'
import { peerToken } from '../../../src/p2p/peer-auth.js'
import { PEER_DISPATCHER_DEFAULTS, PeerContent } from '../../../src/p2p/peer-content.js'
import { createRegistryHandler } from '../../../src/server/registry-handler.js'
import { MemoryBlobStore } from '../../../src/store/memory-blob-store.js'
import { MemoryTagIndex } from '../../../src/store/memory-tag-index.js'
import type { Upstream } from '../../../src/upstream/upstream.js'
import { closeAgents, listenOnLoopback, ownerId, slowBlobUpstream } from '../../helpers/http-agents.js'

const REGISTRY = 'registry.test'
const CLUSTER_KEY = new Uint8Array(32).fill(3)
const CHUNK = 64 * 1024
const blob = Buffer.alloc(32 * CHUNK)
for (let i = 0; i < blob.byteLength; i++) blob[i] = (i * 7919) % 251
const digest = `sha256:${createHash('sha256').update(blob).digest('hex')}` as Digest

/** Streams the blob in 64 KiB chunks every 25 ms (~0.8 s in all), so pulls overlap; counts GETs of it. */
function slowUpstream (gets: { count: number }): Upstream {
  return slowBlobUpstream(blob, digest, { chunkBytes: CHUNK, delayMs: 25, onGet: (d) => { if (d === digest) gets.count++ } })
}

interface TestAgent { readonly id: string, readonly url: string, readonly server: Server, readonly metrics: Metrics, readonly content: PeerContent, readonly dispatcher: Agent }

async function startAgent (network: MemoryRouterNetwork, id: string, gets: { count: number }): Promise<TestAgent> {
  const server = createServer()
  const address = await listenOnLoopback(server)
  const logger = pino({ level: 'silent' })
  const router = network.join({ id, httpAddress: address })
  const metrics = new Metrics({ defaultMetrics: false })
  // Nobody announces what it downloads here: every asker goes to the owner, so the fan-out decides.
  // Each agent its own credentials (and so its own replay cache) from the one cluster key.
  const credentials = peerToken(CLUSTER_KEY)
  const dispatcher = new Agent(PEER_DISPATCHER_DEFAULTS)
  const content = new PeerContent({ router, dispatcher, credentials, logger, findBudgetMs: 50 })
  const mirror = new Mirror({ store: new MemoryBlobStore(), tags: new MemoryTagIndex(), upstream: slowUpstream(gets), remote: content, tagTtlMs: () => 60_000, metrics, logger })
  server.on('request', createRegistryHandler({
    mirror, metrics, logger, defaultRegistry: REGISTRY, registries: new Set([REGISTRY]), isReady: () => true,
    peerPolicy: new HttpPeerPolicy({ credentials, requireForRemote: false, ownerFanout: new OwnerFanout({ limit: 1 }) }),
  }))
  return { id, url: `http://${address}`, server, metrics, content, dispatcher }
}

async function get (agent: TestAgent): Promise<{ status: number, body: Promise<Buffer> }> {
  const res = await request(`${agent.url}/v2/team/app/blobs/${digest}`, { headersTimeout: 10_000, bodyTimeout: 10_000 })
  return { status: res.statusCode, body: res.body.arrayBuffer().then((b) => Buffer.from(b)) }
}

async function redirects (agent: TestAgent): Promise<number> {
  return (await agent.metrics.ownerRedirects.get()).values[0]?.value ?? 0
}

void describe('owner fan-out over HTTP', () => {
  const agents: TestAgent[] = []
  afterEach(async () => { await closeAgents(agents) })

  async function threeAgents (gets: { count: number }): Promise<{ owner: TestAgent, first: TestAgent, second: TestAgent }> {
    const network = new MemoryRouterNetwork()
    // ids chosen so that the owner of the digest is the agent called owner
    const [owner, first, second] = await Promise.all([ownerId(digest, 'owner', ['first', 'second']), 'first', 'second'].map(async (id) => await startAgent(network, id, gets))) as [TestAgent, TestAgent, TestAgent]
    agents.push(owner, first, second)
    return { owner, first, second }
  }

  test('past its fan-out the owner sends a peer to one already streaming it; the upstream is asked once', { timeout: 20_000 }, async () => {
    const gets = { count: 0 }
    const { owner, first, second } = await threeAgents(gets)
    const a = await get(first)
    assert.equal(a.status, 200)
    const b = await get(second)
    assert.equal(b.status, 200)
    const [bytesA, bytesB] = await Promise.all([a.body, b.body])
    assert.ok(bytesA.equals(blob) && bytesB.equals(blob), 'both verified copies')
    assert.equal(await redirects(owner), 1, 'the second asker was sent on')
    assert.equal(gets.count, 1, 'only the owner went upstream, once')
  })

  test('if the peer it was sent to is gone, the asker is served by the owner itself', { timeout: 20_000 }, async () => {
    const gets = { count: 0 }
    const { owner, first, second } = await threeAgents(gets)
    const a = await get(first)
    assert.equal(a.status, 200)
    // first stops answering anyone (our own client of it included); its download from the owner goes on
    a.body.catch(() => {})
    first.server.close()
    first.server.closeAllConnections()
    const b = await get(second)
    assert.equal(b.status, 200)
    assert.ok((await b.body).equals(blob))
    assert.equal(await redirects(owner), 1)
    assert.equal(gets.count, 1)
  })
})
