import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { MemoryRouterNetwork } from '../../../src/p2p/memory-router.js'
import type { PeerInfo, Router } from '../../../src/p2p/router.js'

const DIGEST = `sha256:${'a'.repeat(64)}`
const TAG = 'docker.io/library/nginx:1.27'

async function collect (router: Router, key: string, options: { signal?: AbortSignal, limit?: number } = {}): Promise<PeerInfo[]> {
  const found: PeerInfo[] = []
  for await (const peer of router.findProviders(key, { signal: options.signal ?? AbortSignal.timeout(1_000), ...(options.limit === undefined ? {} : { limit: options.limit }) })) {
    found.push(peer)
  }
  return found
}

void describe('MemoryRouter', () => {
  void test('routers on one network see each other\'s advertisements, in order, never themselves', async () => {
    const network = new MemoryRouterNetwork()
    const a = network.join({ id: 'a', httpAddress: '10.0.0.1:5000', zone: 'z1' })
    const b = network.join({ id: 'b', httpAddress: '10.0.0.2:5000' })
    const c = network.join({ id: 'c', httpAddress: '10.0.0.3:5000' })
    await a.advertise([DIGEST, TAG])
    await b.advertise([DIGEST])
    assert.deepEqual(await collect(c, DIGEST), [
      { id: 'a', httpAddress: '10.0.0.1:5000', zone: 'z1' },
      { id: 'b', httpAddress: '10.0.0.2:5000' },
    ])
    assert.deepEqual((await collect(a, DIGEST)).map(p => p.id), ['b'])
    assert.deepEqual((await collect(c, TAG)).map(p => p.id), ['a'])
    assert.deepEqual(await collect(c, 'sha256:unknown'), [])
    assert.deepEqual(network.providersOf(DIGEST), ['a', 'b'])
    await Promise.all([a.close(), b.close(), c.close()])
  })

  void test('limit stops the lookup', async () => {
    const network = new MemoryRouterNetwork()
    const routers = Array.from({ length: 4 }, (_, i) => network.join({ id: `r${i}`, httpAddress: `10.0.0.${i + 1}:5000` }))
    for (const r of routers) await r.advertise([DIGEST])
    assert.deepEqual((await collect(routers[0]!, DIGEST, { limit: 2 })).map(p => p.id), ['r1', 'r2'])
    assert.deepEqual(await collect(routers[0]!, DIGEST, { limit: 0 }), [])
  })

  void test('withdraw and close remove advertisements at once', async () => {
    const network = new MemoryRouterNetwork()
    const a = network.join({ id: 'a', httpAddress: 'a:1' })
    const b = network.join({ id: 'b', httpAddress: 'b:1' })
    const c = network.join({ id: 'c', httpAddress: 'c:1' })
    await a.advertise([DIGEST, TAG])
    await b.advertise([DIGEST])
    await a.withdraw([DIGEST])
    assert.deepEqual(a.advertised(), [TAG])
    assert.deepEqual((await collect(c, DIGEST)).map(p => p.id), ['b'])
    await b.close()
    assert.deepEqual(await collect(c, DIGEST), [])
    assert.deepEqual(c.peers().map(p => p.id), ['a'])
    assert.equal(b.ready(), false)
    assert.deepEqual(b.peers(), [])
    await b.advertise([DIGEST]) // closed: ignored
    assert.deepEqual(network.providersOf(DIGEST), [])
  })

  void test('peers() lists the other live routers; self() is this one', () => {
    const network = new MemoryRouterNetwork()
    const a = network.join({ id: 'a', httpAddress: 'a:1', zone: 'z' })
    network.join({ id: 'b', httpAddress: 'b:1' })
    assert.deepEqual(a.self(), { id: 'a', httpAddress: 'a:1', zone: 'z' })
    assert.deepEqual(a.peers(), [{ id: 'b', httpAddress: 'b:1' }])
    assert.equal(a.ready(), true)
  })

  void test('an aborted signal ends the lookup quietly; advertise rejects with the reason', async () => {
    const network = new MemoryRouterNetwork({ findDelayMs: 200 })
    const a = network.join({ httpAddress: 'a:1' })
    const b = network.join({ httpAddress: 'b:1' })
    await a.advertise([DIGEST])
    const started = performance.now()
    assert.deepEqual(await collect(b, DIGEST, { signal: AbortSignal.timeout(20) }), [])
    assert.ok(performance.now() - started < 150)
    assert.deepEqual((await collect(b, DIGEST)).map(p => p.id), [a.self().id])
    const controller = new AbortController()
    controller.abort(new Error('stop'))
    await assert.rejects(a.advertise([TAG], controller.signal), /stop/)
  })

  void test('options are validated', () => {
    const network = new MemoryRouterNetwork()
    assert.throws(() => network.join({ httpAddress: 'no-port' }), TypeError)
    network.join({ id: 'x', httpAddress: 'x:1' })
    assert.throws(() => network.join({ id: 'x', httpAddress: 'x:2' }), /already/)
    assert.throws(() => new MemoryRouterNetwork({ findDelayMs: -1 }), TypeError)
  })
})
