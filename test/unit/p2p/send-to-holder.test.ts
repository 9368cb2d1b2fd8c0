// p2p.sendToHolders: a client's blob GET that nothing on this node has, but a peer holds, is answered with a
// 307 to that peer, signed in its query for that one target, so the bytes go to the client once instead of
// through this agent. Two agents in this process, real HTTP servers on one MemoryRouter network.
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { createServer, type Server } from 'node:http'
import { Readable } from 'node:stream'
import { afterEach, describe, test } from 'node:test'
import { pino } from 'pino'
import { Agent, request } from 'undici'
import { Metrics } from '../../../src/metrics/metrics.js'
import { Mirror } from '../../../src/mirror/mirror.js'
import type { Digest } from '../../../src/oci/index.js'
import { HttpPeerPolicy } from '../../../src/p2p/http-peer-policy.js'
import { MemoryRouterNetwork, type MemoryRouter } from '../../../src/p2p/memory-router.js'
import { OwnerFanout } from '../../../src/p2p/owner-fanout.js'
import { peerToken } from '../../../src/p2p/peer-auth.js'
import { PEER_DISPATCHER_DEFAULTS, PeerContent } from '../../../src/p2p/peer-content.js'
import { PEER_CLOCK_WINDOW_MS, PeerCredentials } from '../../../src/p2p/peer-credentials.js'
import type { Router } from '../../../src/p2p/router.js'
import { createRegistryHandler } from '../../../src/server/registry-handler.js'
import { MemoryBlobStore } from '../../../src/store/memory-blob-store.js'
import { MemoryTagIndex } from '../../../src/store/memory-tag-index.js'
import type { Upstream } from '../../../src/upstream/upstream.js'
import { blobOnlyUpstream } from '../../helpers/blob-only-upstream.js'
import { closeAgents, listenOnLoopback, ownerId, slowBlobUpstream } from '../../helpers/http-agents.js'

const REGISTRY = 'registry.test'
const CLUSTER_KEY = new Uint8Array(32).fill(5)
const blob = Buffer.alloc(600_000)
for (let i = 0; i < blob.byteLength; i++) blob[i] = (i * 7919) % 251
const digest = `sha256:${createHash('sha256').update(blob).digest('hex')}` as Digest
const onlyUpstream = Buffer.alloc(70_000, 4)
const upstreamDigest = `sha256:${createHash('sha256').update(onlyUpstream).digest('hex')}` as Digest
const PATH = `/v2/team/app/blobs/${digest}`

function upstreamOf (gets: string[]): Upstream {
  return blobOnlyUpstream(async (_registry, _repository, d) => {
    gets.push(d)
    if (d !== upstreamDigest) throw Object.assign(new Error('not found'), { code: 'ERR_UPSTREAM_NOT_FOUND' })
    return { status: 200, body: Readable.from([onlyUpstream]), length: onlyUpstream.byteLength, totalSize: onlyUpstream.byteLength }
  })
}

interface TestAgent {
  readonly url: string
  readonly address: string
  readonly server: Server
  readonly metrics: Metrics
  readonly store: MemoryBlobStore
  readonly router: MemoryRouter
  readonly dispatcher: Agent
}

interface AgentOptions {
  readonly sendToHolders: boolean
  /** What this agent checks peers' credentials with (default: its own, from the cluster key). */
  readonly credentials?: PeerCredentials
  /** The router its PeerContent sees (default: its MemoryRouter). */
  readonly view?: (router: MemoryRouter) => Router
  readonly upstreamGets?: string[]
  /** Default: no owner routing (only holders), and the upstream of upstreamOf. */
  readonly isOwnerRouting?: boolean
  readonly ownerFanout?: number
  readonly upstream?: Upstream
}

async function startAgent (network: MemoryRouterNetwork, id: string, o: AgentOptions): Promise<TestAgent> {
  const server = createServer()
  const address = await listenOnLoopback(server)
  const logger = pino({ level: 'silent' })
  const router = network.join({ id, httpAddress: address })
  const metrics = new Metrics({ defaultMetrics: false })
  const credentials = o.credentials ?? peerToken(CLUSTER_KEY)
  const dispatcher = new Agent(PEER_DISPATCHER_DEFAULTS)
  const content = new PeerContent({ router: o.view?.(router) ?? router, dispatcher, credentials, logger, findBudgetMs: 200, isOwnerRouting: o.isOwnerRouting ?? false })
  const store = new MemoryBlobStore()
  const mirror = new Mirror({ store, tags: new MemoryTagIndex(), upstream: o.upstream ?? upstreamOf(o.upstreamGets ?? []), remote: content, tagTtlMs: () => 60_000, metrics, logger })
  server.on('request', createRegistryHandler({
    mirror, metrics, logger, defaultRegistry: REGISTRY, registries: new Set([REGISTRY]), isReady: () => true, sendToHolders: o.sendToHolders,
    peerPolicy: new HttpPeerPolicy({ credentials, requireForRemote: false, ownerFanout: new OwnerFanout({ limit: o.ownerFanout ?? 4 }) }),
  }))
  return { url: `http://${address}`, address, server, metrics, store, router, dispatcher }
}

async function put (store: MemoryBlobStore, bytes: Buffer, d: Digest): Promise<void> {
  const w = await store.begin(d)
  await w.write(bytes)
  await w.commit()
}

async function get (url: string, headers: Record<string, string> = {}, method: 'GET' | 'HEAD' = 'GET'): Promise<{ status: number, location: string | undefined, body: Buffer }> {
  const res = await request(url, { method, headers, headersTimeout: 10_000, bodyTimeout: 10_000 })
  const location = res.headers.location
  return { status: res.statusCode, location: typeof location === 'string' ? location : undefined, body: Buffer.from(await res.body.arrayBuffer()) }
}

async function counter (c: { get: () => Promise<{ values: Array<{ value: number }> }> }): Promise<number> {
  return (await c.get()).values.reduce((a, v) => a + v.value, 0)
}

void describe('p2p.sendToHolders: a client sent to the peer that holds a blob', () => {
  const agents: TestAgent[] = []
  afterEach(async () => { await closeAgents(agents) })

  /** `holder` holds the blob and advertises it; `node` is where the client asks. */
  async function pair (node: Omit<AgentOptions, 'sendToHolders'> & { sendToHolders?: boolean } = {}, holderOptions: Partial<AgentOptions> = {}):
  Promise<{ holder: TestAgent, node: TestAgent }> {
    const network = new MemoryRouterNetwork()
    const holder = await startAgent(network, 'holder', { sendToHolders: false, ...holderOptions })
    agents.push(holder)
    const n = await startAgent(network, 'node', { sendToHolders: true, ...node })
    agents.push(n)
    await put(holder.store, blob, digest)
    await holder.router.advertise([digest])
    return { holder, node: n }
  }

  test('the first GET gets a 307 to the holder, whose signed location serves the blob; nothing is kept or relayed here', { timeout: 20_000 }, async () => {
    const { holder, node } = await pair()
    const first = await get(`${node.url}${PATH}`)
    assert.equal(first.status, 307)
    assert.ok(first.location !== undefined)
    const to = new URL(first.location)
    assert.equal(to.host, holder.address)
    assert.equal(to.pathname, PATH)
    assert.equal(to.searchParams.get('ns'), REGISTRY)
    assert.match(to.searchParams.get('flotilla-peer') ?? '', /^local \d+ \S+ \S+$/)
    assert.equal(await counter(node.metrics.sentToHolder), 1)

    const followed = await get(first.location)
    assert.equal(followed.status, 200)
    assert.ok(followed.body.equals(blob), 'the holder sent the blob')
    // The client's HTTP stack may send the same request again (a connection reset): it stays good.
    assert.equal((await get(first.location)).status, 200)
    assert.equal(await node.store.stat(digest), undefined, 'the node kept no copy')
    assert.equal(await counter(node.metrics.servedBytes), 0, 'no byte went through the node')
  })

  test('a retry within the minute is served here: with Range (a resume) at once, and without Range after a 307', { timeout: 20_000 }, async () => {
    const { node } = await pair()
    const resume = await get(`${node.url}${PATH}`, { range: 'bytes=100000-' })
    assert.equal(resume.status, 206, 'a resume is never sent away')
    assert.ok(resume.body.equals(blob.subarray(100_000)))
    assert.equal(await counter(node.metrics.sentToHolder), 0)
    // The resume kept the blob here; without it, a first GET is sent on and its plain retry is served here.
    await node.store.delete(digest)
    const first = await get(`${node.url}${PATH}`)
    assert.equal(first.status, 307)
    const again = await get(`${node.url}${PATH}`)
    assert.equal(again.status, 200, 'the retry after a 307 is served by this node')
    assert.ok(again.body.equals(blob))
    assert.equal(await counter(node.metrics.sentToHolder), 1)
  })

  test('HEAD is answered here, and so is everything when the option is off', { timeout: 20_000 }, async () => {
    const { node } = await pair({ sendToHolders: false })
    const head = await get(`${node.url}${PATH}`, {}, 'HEAD')
    assert.equal(head.status, 200)
    const got = await get(`${node.url}${PATH}`)
    assert.equal(got.status, 200)
    assert.ok(got.body.equals(blob))
    assert.equal(await counter(node.metrics.sentToHolder), 0)
  })

  test('a blob held here, or that no peer holds, is served here', { timeout: 20_000 }, async () => {
    const gets: string[] = []
    const { node } = await pair({ upstreamGets: gets })
    const fromUpstream = await get(`${node.url}/v2/team/app/blobs/${upstreamDigest}`)
    assert.equal(fromUpstream.status, 200)
    assert.ok(fromUpstream.body.equals(onlyUpstream))
    assert.deepEqual(gets, [upstreamDigest])
    await put(node.store, blob, digest)
    const held = await get(`${node.url}${PATH}`)
    assert.equal(held.status, 200)
    assert.equal(await counter(node.metrics.sentToHolder), 0)
  })

  test('a holder whose provider record outlived its connection is not sent to', { timeout: 20_000 }, async () => {
    const notConnected = (router: MemoryRouter): Router => ({
      ready: () => router.ready(),
      advertise: async (keys, signal) => { await router.advertise(keys, signal) },
      withdraw: async (keys) => { await router.withdraw(keys) },
      findProviders: (key, options) => router.findProviders(key, options),
      peers: () => [],
      self: () => router.self(),
      close: async () => { await router.close() },
    })
    const { node } = await pair({ view: notConnected })
    const got = await get(`${node.url}${PATH}`)
    assert.equal(got.status, 200, 'fetched from the holder and served here')
    assert.ok(got.body.equals(blob))
    assert.equal(await counter(node.metrics.sentToHolder), 0)
  })

  test('the signed location is good for its target within the clock window only', { timeout: 20_000 }, async () => {
    let now = Date.now()
    const { holder, node } = await pair({}, { credentials: new PeerCredentials(CLUSTER_KEY, { now: () => now }) })
    const first = await get(`${node.url}${PATH}`)
    assert.equal(first.status, 307)
    const location = first.location ?? ''
    const param = new URL(location).searchParams.get('flotilla-peer') ?? ''
    const signed = `flotilla-peer=${encodeURIComponent(param)}`
    // Moved to another digest, another method, or with the credential not last: refused.
    assert.equal((await get(location.replace(digest, upstreamDigest))).status, 401)
    assert.equal((await get(location, {}, 'HEAD')).status, 401)
    assert.equal((await get(`${holder.url}${PATH}?${signed}&ns=${REGISTRY}`)).status, 401)
    assert.equal((await get(`${holder.url}${PATH}?ns=${REGISTRY}&${signed.slice(0, -2)}`)).status, 401)
    assert.equal((await get(location)).status, 200)
    now += PEER_CLOCK_WINDOW_MS + 1000
    assert.equal((await get(location)).status, 401, 'expired')
  })

  test('a node without peers refuses a request carrying the parameter, as it refuses the header', { timeout: 20_000 }, async () => {
    const server = createServer(createRegistryHandler({
      mirror: new Mirror({ store: new MemoryBlobStore(), tags: new MemoryTagIndex(), upstream: upstreamOf([]), tagTtlMs: () => 60_000, metrics: new Metrics({ defaultMetrics: false }), logger: pino({ level: 'silent' }) }),
      metrics: new Metrics({ defaultMetrics: false }), logger: pino({ level: 'silent' }), defaultRegistry: REGISTRY, registries: new Set([REGISTRY]), isReady: () => true,
    }))
    const address = await listenOnLoopback(server)
    try {
      const url = `http://${address}/v2/team/app/blobs/${upstreamDigest}`
      const refused = await get(`${url}?ns=${REGISTRY}&flotilla-peer=local%201%20x%20y`)
      assert.equal(refused.status, 401)
      assert.match(refused.body.toString(), /"code":"UNAUTHORIZED"/)
      assert.equal((await get(url)).status, 200)
    } finally {
      server.closeAllConnections()
      await new Promise((resolve) => server.close(resolve))
    }
  })
})

/** Streams `blob` in 60 KB chunks every 20 ms (~0.2 s), so that pulls overlap; records GETs. */
function slowUpstream (gets: string[]): Upstream {
  return slowBlobUpstream(blob, digest, { chunkBytes: 60_000, delayMs: 20, onGet: (d) => { gets.push(d) } })
}

void describe('p2p.sendToHolders when nobody holds the blob yet: the client goes to the digest\'s owner, within its fan-out', () => {
  const agents: TestAgent[] = []
  afterEach(async () => { await closeAgents(agents) })

  test('the first client is served by the owner; past the fan-out (1) the owner sends the next back to its node, which relays; one upstream GET', { timeout: 20_000 }, async () => {
    const gets: string[] = []
    const network = new MemoryRouterNetwork()
    const options = { sendToHolders: true, isOwnerRouting: true, ownerFanout: 1, upstream: slowUpstream(gets) }
    // The id of the agent called owner makes it the digest's owner.
    const [owner, a, b] = await Promise.all([ownerId(digest, 'owner', ['a', 'b']), 'a', 'b'].map(async (id) => await startAgent(network, id, options))) as [TestAgent, TestAgent, TestAgent]
    agents.push(owner, a, b)

    const sentA = await get(`${a.url}${PATH}`)
    assert.equal(sentA.status, 307)
    const toOwner = new URL(sentA.location ?? '')
    assert.equal(toOwner.host, owner.address)
    assert.equal(toOwner.searchParams.get('flotilla-back'), a.address, 'signed with where to send it back')
    assert.match(toOwner.searchParams.get('flotilla-peer') ?? '', /^owner /)
    // Held open while the owner streams it: the fan-out of 1 is taken.
    const fromOwner = await request(sentA.location ?? '', { headersTimeout: 10_000, bodyTimeout: 10_000 })
    assert.equal(fromOwner.statusCode, 200)
    const bytesA = fromOwner.body.arrayBuffer().then((x) => Buffer.from(x))

    const sentB = await get(`${b.url}${PATH}`)
    assert.equal(sentB.status, 307)
    const back = await get(sentB.location ?? '')
    assert.equal(back.status, 307, 'past its fan-out the owner sends the client back')
    const toNode = new URL(back.location ?? '')
    assert.equal(toNode.host, b.address)
    assert.equal(toNode.searchParams.get('flotilla-peer'), null, 'without the credential')
    assert.equal(toNode.searchParams.get('ns'), REGISTRY)
    const relayed = await get(back.location ?? '')
    assert.equal(relayed.status, 200, 'its node serves it (a request within the minute)')
    assert.ok(relayed.body.equals(blob))
    assert.ok((await bytesA).equals(blob))
    assert.deepEqual(gets, [digest], 'the owner went upstream once')
    assert.equal(await counter(a.metrics.sentToHolder), 1)
    assert.equal(await counter(b.metrics.sentToHolder), 1)
    assert.equal(await counter(owner.metrics.ownerRedirects), 1)
    assert.equal(await a.store.stat(digest), undefined, 'a, whose client the owner served, kept nothing')
  })

  test('a forged location cannot send the client elsewhere: the back address is signed', { timeout: 20_000 }, async () => {
    const network = new MemoryRouterNetwork()
    const options = { sendToHolders: true, isOwnerRouting: true, ownerFanout: 1, upstream: slowUpstream([]) }
    const [owner, a] = await Promise.all([ownerId(digest, 'owner', ['a']), 'a'].map(async (id) => await startAgent(network, id, options))) as [TestAgent, TestAgent]
    agents.push(owner, a)
    const sent = await get(`${a.url}${PATH}`)
    assert.equal(sent.status, 307)
    const forged = (sent.location ?? '').replace(`flotilla-back=${encodeURIComponent(a.address)}`, 'flotilla-back=evil.example%3A80')
    assert.notEqual(forged, sent.location)
    assert.equal((await get(forged)).status, 401)
  })
})
