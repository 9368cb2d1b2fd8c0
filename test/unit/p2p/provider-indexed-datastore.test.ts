import assert from 'node:assert/strict'
import { test } from 'node:test'
import { MemoryDatastore } from 'datastore-core'
import { Key, type Query } from 'interface-datastore'
import { ProviderIndexedDatastore } from '../../../src/p2p/provider-indexed-datastore.js'
import { keyToCid } from '../../../src/p2p/key-cid.js'

const cidText = (n: number): string => keyToCid(`sha256:${n.toString(16).padStart(64, '0')}`).toString()

async function collect<T> (it: AsyncIterable<T> | Iterable<T>): Promise<T[]> {
  const out: T[] = []
  for await (const x of it) out.push(x)
  return out
}

void test('queries answer exactly as the plain MemoryDatastore does, through puts and deletes', async () => {
  const plain = new MemoryDatastore()
  const indexed = new ProviderIndexedDatastore()
  const keys: Key[] = []
  for (let c = 0; c < 30; c++) {
    for (let p = 0; p < 1 + (c % 4); p++) keys.push(new Key(`/dht/provider/${cidText(c)}/12D3KooWPeer${p}`))
  }
  keys.push(new Key('/dht/record/abc'), new Key('/peers/12D3KooWPeer1'), new Key('/dht/provider/odd'))
  for (const [i, k] of keys.entries()) {
    await plain.put(k, Uint8Array.of(i % 256))
    await indexed.put(k, Uint8Array.of(i % 256))
  }
  for (const k of keys.filter((_, i) => i % 5 === 0)) {
    await plain.delete(k)
    await indexed.delete(k)
  }
  const queries: Query[] = [
    { prefix: `/dht/provider/${cidText(3)}` }, { prefix: `/dht/provider/${cidText(7)}` }, { prefix: `/dht/provider/${cidText(99)}` },
    { prefix: '/dht/provider/' }, { prefix: '/dht' }, { prefix: '/dht/provider/odd' }, {},
  ]
  const sorted = (pairs: Array<{ key: Key, value: Uint8Array }>): string[] => pairs.map((p) => `${p.key.toString()}=${p.value[0] ?? ''}`).sort()
  for (const q of queries) {
    assert.deepEqual(sorted(await collect(indexed.query(q))), sorted(await collect(plain.query(q))), JSON.stringify(q))
    assert.deepEqual((await collect(indexed.queryKeys({ prefix: q.prefix }))).map(String).sort(), (await collect(plain.queryKeys({ prefix: q.prefix }))).map(String).sort(), JSON.stringify(q))
  }
  assert.equal((await collect(indexed.query({ prefix: `/dht/provider/${cidText(3)}` }))).length, 4)
})

void test('a lookup of one CID does not read the other records (stays fast with 40,000 of them)', async () => {
  const indexed = new ProviderIndexedDatastore()
  for (let c = 0; c < 5000; c++) {
    for (let p = 0; p < 8; p++) await indexed.put(new Key(`/dht/provider/${cidText(c)}/12D3KooWPeer${p}`), Uint8Array.of(1))
  }
  // the plain store scans all 40,000 keys per lookup; count what the indexed one hands to the query
  let handed = 0
  const all = indexed._all.bind(indexed)
  indexed._all = function * (q, options) { for (const pair of all(q, options) as Generator<{ key: Key, value: Uint8Array }>) { handed++; yield pair } }
  const found = await collect(indexed.query({ prefix: `/dht/provider/${cidText(4242)}` }))
  assert.equal(found.length, 8)
  assert.equal(handed, 8)
  assert.deepEqual(await collect(indexed.query({ prefix: `/dht/provider/${cidText(999_999)}` })), [])
})
