import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { TokenCache } from '../../../src/upstream/token-cache.js'

function cacheWithClock (options: { marginMs?: number, maxEntries?: number } = {}): { cache: TokenCache, advance: (ms: number) => void } {
  let now = 0
  return { cache: new TokenCache({ ...options, now: () => now }), advance: (ms) => { now += ms } }
}

void describe('TokenCache', () => {
  void test('keys by registry and scope', () => {
    const { cache } = cacheWithClock()
    cache.set('docker.io', 'repository:a:pull', 'ta', 300)
    assert.equal(cache.get('docker.io', 'repository:a:pull'), 'ta')
    assert.equal(cache.get('docker.io', 'repository:b:pull'), undefined)
    assert.equal(cache.get('ghcr.io', 'repository:a:pull'), undefined)
  })

  void test('expires expires_in seconds minus the margin after it was stored', () => {
    const { cache, advance } = cacheWithClock({ marginMs: 10_000 })
    cache.set('r', 's', 't', 300)
    advance(289_999)
    assert.equal(cache.get('r', 's'), 't')
    advance(1)
    assert.equal(cache.get('r', 's'), undefined)
  })

  void test('defaults to 60 s without expires_in, or with a nonsensical one', () => {
    for (const expiresIn of [undefined, 0, -5, Number.NaN]) {
      const { cache, advance } = cacheWithClock({ marginMs: 10_000 })
      cache.set('r', 's', 't', expiresIn)
      advance(49_999)
      assert.equal(cache.get('r', 's'), 't', String(expiresIn))
      advance(1)
      assert.equal(cache.get('r', 's'), undefined, String(expiresIn))
    }
  })

  void test('a token shorter-lived than the margin keeps half its life', () => {
    const { cache, advance } = cacheWithClock({ marginMs: 10_000 })
    cache.set('r', 's', 't', 4)
    advance(1999)
    assert.equal(cache.get('r', 's'), 't')
    advance(1)
    assert.equal(cache.get('r', 's'), undefined)
  })

  void test('delete drops a token; maxEntries bounds the cache', () => {
    const { cache } = cacheWithClock({ maxEntries: 2 })
    cache.set('r', 'a', '1')
    cache.set('r', 'b', '2')
    cache.set('r', 'c', '3')
    assert.equal(cache.size, 2)
    assert.equal(cache.get('r', 'a'), undefined, 'oldest evicted')
    cache.delete('r', 'c')
    assert.equal(cache.get('r', 'c'), undefined)
  })
})
