import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { pino } from 'pino'
import { Metrics } from '../../../src/metrics/metrics.js'
import type { Digest } from '../../../src/oci/index.js'
import { MemoryBlobStore } from '../../../src/store/memory-blob-store.js'
import { MemoryTagIndex } from '../../../src/store/memory-tag-index.js'
import { MemoryScopeIndex } from '../../../src/store/scope-index.js'
import { StoreBudget, type StoreBudgetOptions } from '../../../src/store/store-budget.js'
import { bytesOf, digestOf } from './blob-store-conformance.js'

const logger = pino({ level: 'silent' })

/** A store on a clock the test moves, a tag index, a scope index, metrics, and what the store removed, in order. */
function setup (storeOptions: { capacityBytes?: number } = {}) {
  const clock = { now: 1000 }
  const store = new MemoryBlobStore({ ...storeOptions, now: () => clock.now })
  const tags = new MemoryTagIndex()
  const scopes = new MemoryScopeIndex()
  const metrics = new Metrics({ defaultMetrics: false })
  const removed: Digest[] = []
  store.watch((e) => { if (e.type === 'removed') removed.push(e.digest) })
  const budget = (o: Partial<StoreBudgetOptions> = {}): StoreBudget => new StoreBudget({ store, tags, scopes, metrics, logger, ...o })
  /** Commits `bytes` at the clock's next tick; its digest. */
  const put = async (bytes: Buffer): Promise<Digest> => {
    clock.now += 1000
    const digest = digestOf(bytes)
    const w = await store.begin(digest, bytes.byteLength)
    await w.write(bytes)
    await w.commit()
    return digest
  }
  const held = async (): Promise<Digest[]> => {
    const out: Digest[] = []
    for await (const b of store.list()) out.push(b.digest)
    return out.sort()
  }
  return { clock, store, tags, scopes, metrics, removed, budget, put, held }
}

async function metric (metrics: Metrics, name: string): Promise<number> {
  const m = (await metrics.registry.getMetricsAsJSON()).find((x) => x.name === name)
  return (m?.values ?? []).reduce((sum, v) => sum + v.value, 0)
}

function manifestOf (config: Digest, layers: readonly Digest[]): Buffer {
  return Buffer.from(JSON.stringify({
    schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: config, size: 100 },
    layers: layers.map((digest) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest, size: 100 })),
  }))
}

describe('StoreBudget', () => {
  test('evicts the least recently served first (an open counts), down to the low-water mark, not just under budget', async () => {
    const s = setup()
    const [a, b, c] = [await s.put(bytesOf(100, 1)), await s.put(bytesOf(100, 2)), await s.put(bytesOf(100, 3))]
    s.clock.now += 1000
    await s.store.read(a) // a is now served more recently than b and c
    const d = await s.put(bytesOf(100, 4))
    const pass = await s.budget({ maxBytes: 300, lowWaterPercent: 70 }).pass('over budget')
    assert.deepEqual(s.removed, [b, c], 'b then c; 200 bytes <= 70 % of 300 once they are gone')
    assert.deepEqual(await s.held(), [a, d].sort())
    assert.deepEqual({ evicted: pass.evicted, bytes: pass.bytes, heldBytes: pass.heldBytes }, { evicted: 2, bytes: 200, heldBytes: 200 })
    assert.equal(await metric(s.metrics, 'flotilla_store_evictions_total'), 2)
    assert.equal(await metric(s.metrics, 'flotilla_store_evicted_bytes_total'), 200)
    assert.equal(await metric(s.metrics, 'flotilla_store_budget_bytes'), 300)
    assert.equal(await metric(s.metrics, 'flotilla_store_bytes'), 200)
  })

  test('a store within its budget is left alone', async () => {
    const s = setup()
    for (let i = 0; i < 3; i++) await s.put(bytesOf(100, i))
    assert.equal((await s.budget({ maxBytes: 300 }).pass('over budget')).evicted, 0)
    assert.equal((await s.budget().pass('over budget')).evicted, 0, 'no limit at all')
    assert.deepEqual(s.removed, [])
  })

  test('pinned blobs and running downloads are never evicted, even if the store stays over budget', async () => {
    const s = setup()
    const [a, b, c] = [await s.put(bytesOf(100, 1)), await s.put(bytesOf(100, 2)), await s.put(bytesOf(100, 3))]
    s.store.pins.pin(a, 'precache:test')
    const pass = await s.budget({ maxBytes: 0, isBusy: (d) => d === b }).pass('over budget')
    assert.deepEqual(s.removed, [c])
    assert.deepEqual(await s.held(), [a, b].sort())
    assert.equal(pass.heldBytes, 200)
    s.store.pins.unpin(a, 'precache:test')
    await s.budget({ maxBytes: 0 }).pass('over budget')
    assert.deepEqual(s.removed, [c, a, b])
  })

  test('a manifest a tag points to stays while its layers are held, and goes with them (after them)', async () => {
    const s = setup()
    const config = await s.put(bytesOf(50, 10))
    const layers = [await s.put(bytesOf(100, 11)), await s.put(bytesOf(100, 12))]
    const manifestBytes = manifestOf(config, layers)
    s.clock.now = 0 // the oldest of all
    const manifest = digestOf(manifestBytes)
    const w = await s.store.begin(manifest)
    await w.write(manifestBytes)
    await w.commit()
    await s.tags.set('docker.io', 'library/app', 'v1', { digest: manifest, mediaType: 'application/vnd.oci.image.manifest.v1+json', size: manifestBytes.byteLength, fetchedAt: 0 })
    s.clock.now = 10_000
    const other = await s.put(bytesOf(100, 20))

    // 100 bytes too many: the manifest is the least recently served, but its config and first layer go.
    await s.budget({ maxBytes: manifestBytes.byteLength + 250, lowWaterPercent: 100 }).pass('over budget')
    assert.deepEqual(s.removed, [config, layers[0]], 'the manifest is the oldest, but its layers are held')
    await s.budget({ maxBytes: 0 }).pass('over budget')
    assert.deepEqual(s.removed, [config, layers[0], layers[1], manifest, other], 'the manifest goes once its blobs are gone')
  })

  test('an evicted digest leaves the scope index', async () => {
    const s = setup()
    const a = await s.put(bytesOf(100, 1))
    await s.scopes.add(a, 'ghcr.io/private/app')
    await s.budget({ maxBytes: 0 }).pass('over budget')
    assert.equal(s.scopes.get(a), undefined)
  })

  test('maxDiskPercent: the budget is what the store holds plus the room left under the threshold', async () => {
    const s = setup()
    for (let i = 0; i < 3; i++) await s.put(bytesOf(100, i))
    // 1000 bytes of disk, 900 used (300 of them ours): 75 % allows 750, so we must shed 150.
    const budget = s.budget({ maxDiskPercent: 75, disk: async () => ({ totalBytes: 1000, availableBytes: 100 }) })
    assert.equal(await budget.budgetBytes(), 150)
    await budget.pass('over budget')
    assert.equal(await s.store.totalBytes(), 100, 'down to 90 % of 150')
    const both = s.budget({ maxBytes: 50, maxDiskPercent: 75, disk: async () => ({ totalBytes: 1000, availableBytes: 900 }) })
    assert.equal(await both.budgetBytes(), 50, 'the smaller of the two')
  })

  test('started, a commit that takes the store over budget starts a pass', async () => {
    const s = setup()
    const budget = s.budget({ maxBytes: 250, lowWaterPercent: 100 })
    budget.start()
    const a = await s.put(bytesOf(100, 1))
    await s.put(bytesOf(100, 2))
    await budget.settled()
    assert.deepEqual(s.removed, [])
    await s.put(bytesOf(100, 3))
    await budget.settled()
    assert.deepEqual(s.removed, [a])
    await budget.close()
    await s.put(bytesOf(100, 4))
    await budget.settled()
    assert.deepEqual(s.removed, [a], 'closed: no more passes')
  })

  test('disk full: a write that finds no room starts a pass, and the next blob that fits is kept', async () => {
    const s = setup({ capacityBytes: 1000 })
    const budget = s.budget()
    budget.start()
    const old = [await s.put(bytesOf(300, 1)), await s.put(bytesOf(300, 2)), await s.put(bytesOf(300, 3))]
    const big = bytesOf(200, 4)
    const w = await s.store.begin(digestOf(big), big.byteLength)
    await w.write(big)
    assert.equal(w.isKeeping, false)
    assert.equal((await w.commit()).isKept, false)
    await budget.settled()
    assert.deepEqual(s.removed, [old[0]], 'the least recently served, down to 90 % of what was held')
    const again = await s.put(big)
    assert.deepEqual(await s.store.read(again), big)
    await budget.close()
  })

  test('bad options are refused when it is built', () => {
    const s = setup()
    assert.throws(() => s.budget({ maxBytes: -1 }), TypeError)
    assert.throws(() => s.budget({ maxDiskPercent: 0, disk: async () => ({ totalBytes: 1, availableBytes: 1 }) }), TypeError)
    assert.throws(() => s.budget({ maxDiskPercent: 50 }), TypeError, 'a percentage needs the disk')
    assert.throws(() => s.budget({ lowWaterPercent: 120 }), TypeError)
  })

  test('a blob whose file containerd also names (a hard link) neither counts against the budget nor is evicted', async () => {
    const s = setup()
    const [linked, own1, own2] = [await s.put(bytesOf(100, 1)), await s.put(bytesOf(100, 2)), await s.put(bytesOf(100, 3))]
    const list = s.store.list.bind(s.store)
    s.store.list = async function * () { for await (const b of list()) yield { ...b, isShared: b.digest === linked } }
    const pass = await s.budget({ maxBytes: 250, lowWaterPercent: 80 }).pass('over budget')
    assert.equal(pass.evicted, 0, 'own bytes (200) are within the budget: the link costs nothing')
    assert.equal(await metric(s.metrics, 'flotilla_store_linked_bytes'), 100)
    assert.equal(await metric(s.metrics, 'flotilla_store_own_bytes'), 200)
    const tight = await s.budget({ maxBytes: 150, lowWaterPercent: 100 }).pass('over budget')
    assert.equal(tight.evicted, 1)
    assert.deepEqual(s.removed, [own1], 'the oldest own copy goes; the older linked blob stays')
    assert.ok((await s.held()).includes(linked) && (await s.held()).includes(own2))
  })
})
