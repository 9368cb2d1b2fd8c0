// KeyAnnouncer: in a cluster smaller than a k-bucket keys go straight to every connected peer, with no DHT
// walk; a peer that cannot be told, or a larger cluster, gets the DHT's announcement as before.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { KadDHT } from '@libp2p/kad-dht'
import { peerIdFromString } from '@libp2p/peer-id'
import type { CID } from 'multiformats/cid'
import { pino } from 'pino'
import { KeyAnnouncer, type KeyAnnouncerOptions } from '../../../src/p2p/key-announcer.js'
import { keyToCid } from '../../../src/p2p/key-cid.js'

const SELF = peerIdFromString('12D3KooWH4tnKpHTANQxEGGTKHZCFsNBPJi9m7sxKmwz4bVkwCkb')
const digest = (n: number): string => `sha256:${n.toString(16).padStart(64, '0')}`

/** The parts of kad-dht the announcer uses: walks counted, provider records kept in a map. */
function fakeDht (): { dht: KadDHT, walks: string[], records: Map<string, string[]>, cancelled: string[] } {
  const walks: string[] = []
  const records = new Map<string, string[]>()
  const cancelled: string[] = []
  const dht = {
    async * provide (cid: CID) { walks.push(cid.toString()); yield * [] },
    async cancelReprovide (cid: CID) { cancelled.push(cid.toString()) },
    providers: {
      async addProvider (cid: CID, peer: { toString: () => string }) { records.set(cid.toString(), [...records.get(cid.toString()) ?? [], peer.toString()]) },
      async getProviders () { return [] },
    },
  }
  return { dht: dht as unknown as KadDHT, walks, records, cancelled }
}

function announcer (o: Partial<KeyAnnouncerOptions> & Pick<KeyAnnouncerOptions, 'dht' | 'push'>, shutdown = new AbortController()): KeyAnnouncer {
  return new KeyAnnouncer({
    self: SELF, connected: new Set(['p1', 'p2', 'p3']), knowsWholeCluster: () => true, logger: pino({ level: 'silent' }),
    shutdown: shutdown.signal, timeoutMs: 2000, readvertiseIntervalMs: 60_000, walkConcurrency: 4, ...o,
  })
}

void test('a small cluster: every connected peer is told all the keys of a call at once, our own records kept, no walk', async () => {
  const { dht, walks, records } = fakeDht()
  const pushed: Array<[string, readonly string[]]> = []
  const a = announcer({ dht, push: async (peer, keys) => { pushed.push([peer, keys]) } })
  const keys = [digest(1), digest(2), 'registry.example/team/app:v1']
  await a.advertise(keys)
  assert.deepEqual(walks, [])
  assert.deepEqual(pushed.map(([p]) => p).sort(), ['p1', 'p2', 'p3'])
  for (const [, k] of pushed) assert.deepEqual(k, keys)
  for (const key of keys) assert.deepEqual(records.get(keyToCid(key).toString()), [SELF.toString()])
  assert.deepEqual([...a.keys()], keys)
})

void test('a peer that cannot be told (an older node, a broken stream): the keys go through the DHT walk', async () => {
  const { dht, walks } = fakeDht()
  const a = announcer({ dht, push: async (peer) => { if (peer === 'p2') throw new Error('protocol selection failed') } })
  await a.advertise([digest(1), digest(2)])
  assert.deepEqual(walks.sort(), [keyToCid(digest(1)).toString(), keyToCid(digest(2)).toString()].sort())
})

void test('a cluster as large as a k-bucket walks the DHT and pushes nothing', async () => {
  const { dht, walks } = fakeDht()
  let pushes = 0
  const a = announcer({ dht, knowsWholeCluster: () => false, push: async () => { pushes++ } })
  await a.advertise([digest(3)])
  assert.equal(pushes, 0)
  assert.deepEqual(walks, [keyToCid(digest(3)).toString()])
})

void test('a push that never answers is bounded by timeoutMs, then the keys walk', async () => {
  const { dht, walks } = fakeDht()
  const a = announcer({
    dht, timeoutMs: 100,
    push: async (_peer, _keys, signal) => { await new Promise((_resolve, reject) => signal.addEventListener('abort', () => reject(signal.reason as Error), { once: true })) },
  })
  const started = Date.now()
  const alive = setTimeout(() => {}, 5000) // the announcer's own timers do not hold the process open
  await a.advertise([digest(4)]).finally(() => clearTimeout(alive))
  assert.ok(Date.now() - started < 1500, `took ${Date.now() - started} ms`)
  assert.equal(walks.length, 1)
})

void test('with no peer the keys wait; the first peer gets them all, and withdrawn keys are not announced', async () => {
  const { dht, walks, cancelled } = fakeDht()
  const connected = new Set<string>()
  const pushed: string[][] = []
  const a = announcer({ dht, connected, push: async (_peer, keys) => { pushed.push([...keys]) } })
  await a.advertise([digest(5), digest(6), digest(7)])
  assert.deepEqual(pushed, [])
  await a.withdraw([digest(6)])
  assert.deepEqual(cancelled, [keyToCid(digest(6)).toString()])
  connected.add('p1')
  a.firstPeerConnected()
  const deadline = Date.now() + 5000
  while (pushed.length === 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20))
  assert.deepEqual(pushed, [[digest(5), digest(7)]])
  assert.deepEqual(walks, [])
  await a.close()
})

void test('after shutdown, advertise does nothing', async () => {
  const { dht, walks } = fakeDht()
  const shutdown = new AbortController()
  let pushes = 0
  const a = announcer({ dht, push: async () => { pushes++ } }, shutdown)
  shutdown.abort()
  await a.advertise([digest(8)])
  assert.equal(pushes + walks.length, 0)
})
