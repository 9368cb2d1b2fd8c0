// NodeStatusSource assembles /status.json from in-memory ports; metricsReadings reads the real Metrics.
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { Metrics } from '../../../src/metrics/metrics.js'
import { metricsReadings } from '../../../src/status/metrics-readings.js'
import { nodeStatusSchema } from '../../../src/status/node-status-schema.js'
import { NodeStatusSource, type NodeStatusPorts, type StatusReadings } from '../../../src/status/node-status-source.js'
import { DIGEST, fullStatus } from './node-status-fixture.js'

const T0 = Date.parse('2026-05-01T12:00:00.000Z')

const READINGS: StatusReadings = {
  store: { bytes: 1000, ownBytes: 800, linkedBytes: 200, budgetBytes: 5000, evictions: 1, evictedBytes: 10 },
  servedBytes: { hit: 700, peer: 200, upstream: 100 },
  upstreamBytes: 150,
}

function ports (overrides: Partial<NodeStatusPorts> = {}): NodeStatusPorts {
  return {
    role: 'agent', version: '1.2.3', startedAt: T0 - 90_500, now: () => T0,
    address: () => '127.0.0.1:5000', zone: () => 'z1',
    readings: async () => READINGS,
    downloads: () => [{ digest: DIGEST, registry: 'docker.io', size: 4000, bytesReceived: 2000, startedAt: T0 - 4000, source: 'upstream:docker.io' }],
    ...overrides,
  }
}

void describe('NodeStatusSource', () => {
  void test('every section from its port; the result validates against the schema', async () => {
    const precache = fullStatus().precache
    assert.ok(precache !== null)
    const status = await new NodeStatusSource(ports({
      peers: () => [{ id: 'b', httpAddress: '10.0.0.2:5000', zone: 'z2' }, { id: 'a', httpAddress: '10.0.0.3:5000' }],
      precache: () => precache,
      upstreams: () => [{ registry: 'docker.io', endpoint: 'https://registry-1.docker.io', circuit: 'open', lastError: 'boom', lastErrorAt: new Date(T0).toISOString() }],
      recentErrors: () => [{ at: new Date(T0).toISOString(), message: 'request failed' }],
    })).status()
    assert.deepEqual(status.node, {
      role: 'agent', version: '1.2.3', zone: 'z1', address: '127.0.0.1:5000',
      startedAt: new Date(T0 - 90_500).toISOString(), uptimeSeconds: 90, now: new Date(T0).toISOString(),
    })
    // Sorted by id; connected peers are seen now.
    assert.deepEqual(status.peers, [
      { id: 'a', address: '10.0.0.3:5000', zone: null, lastSeen: new Date(T0).toISOString() },
      { id: 'b', address: '10.0.0.2:5000', zone: 'z2', lastSeen: new Date(T0).toISOString() },
    ])
    assert.deepEqual(status.store, READINGS.store)
    assert.deepEqual(status.downloads, [{
      digest: DIGEST, registry: 'docker.io', repository: null, bytesDone: 2000, size: 4000, rate: 500,
      source: 'upstream:docker.io', startedAt: new Date(T0 - 4000).toISOString(),
    }])
    assert.equal(status.precache, precache)
    assert.equal(status.upstreams[0]?.circuit, 'open')
    assert.equal(status.recentErrors.length, 1)
    assert.deepEqual(status.servedBytes, READINGS.servedBytes)
    assert.equal(status.upstreamBytesSaved, 1000 - 150)
    assert.ok(nodeStatusSchema.safeParse(JSON.parse(JSON.stringify(status))).success)
  })

  void test('optional ports absent: empty lists and null, never missing keys', async () => {
    const status = await new NodeStatusSource(ports({ downloads: () => [], zone: () => null })).status()
    assert.deepEqual(status.peers, [])
    assert.deepEqual(status.downloads, [])
    assert.equal(status.precache, null)
    assert.deepEqual(status.upstreams, [])
    assert.deepEqual(status.recentErrors, [])
    assert.equal(status.node.zone, null)
    assert.ok(nodeStatusSchema.safeParse(JSON.parse(JSON.stringify(status))).success)
  })

  void test('a download not answered yet: no size, no source, rate 0; saved bytes never negative', async () => {
    const status = await new NodeStatusSource(ports({
      downloads: () => [{ digest: DIGEST, registry: undefined, size: undefined, bytesReceived: 0, startedAt: T0, source: undefined }],
      readings: async () => ({ ...READINGS, upstreamBytes: 10_000 }),
    })).status()
    assert.deepEqual(status.downloads.map((d) => [d.registry, d.size, d.rate, d.source]), [[null, null, 0, 'starting']])
    assert.equal(status.upstreamBytesSaved, 0)
  })

  void test('a start time that is not a time is refused when built', () => {
    assert.throws(() => new NodeStatusSource(ports({ startedAt: Number.NaN })), TypeError)
  })
})

void describe('metricsReadings', () => {
  void test('store gauges and counters, served bytes by source, upstream bytes summed over registries', async () => {
    const m = new Metrics()
    m.storeOwnBytes.set(700)
    m.storeLinkedBytes.set(300)
    m.storeBudgetBytes.set(9000)
    m.storeEvictions.inc({ reason: 'budget' }, 2)
    m.storeEvictedBytes.inc({ reason: 'budget' }, 50)
    m.servedBytes.inc({ source: 'hit' }, 100)
    m.servedBytes.inc({ source: 'upstream' }, 40)
    m.upstreamBytes.inc({ registry: 'docker.io' }, 30)
    m.upstreamBytes.inc({ registry: 'ghcr.io' }, 12)
    const r = await metricsReadings(m, async () => 1000)()
    assert.deepEqual(r, {
      store: { bytes: 1000, ownBytes: 700, linkedBytes: 300, budgetBytes: 9000, evictions: 2, evictedBytes: 50 },
      servedBytes: { hit: 100, upstream: 40 },
      upstreamBytes: 42,
    })
  })

  void test('before the first eviction pass: own, linked and budget unknown (null), not 0', async () => {
    const r = await metricsReadings(new Metrics(), async () => 0)()
    assert.deepEqual(r.store, { bytes: 0, ownBytes: null, linkedBytes: null, budgetBytes: null, evictions: 0, evictedBytes: 0 })
    assert.deepEqual(r.servedBytes, {})
  })
})
