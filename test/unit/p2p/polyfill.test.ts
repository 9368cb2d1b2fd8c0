import '../../../src/p2p/polyfill.js'
import assert from 'node:assert/strict'
import { test } from 'node:test'

void test('Promise.withResolvers exists after the polyfill and behaves per spec', async () => {
  const P = Promise as unknown as { withResolvers: <T>() => { promise: Promise<T>, resolve: (v: T) => void, reject: (e: unknown) => void } }
  assert.equal(typeof P.withResolvers, 'function')
  const ok = P.withResolvers<number>()
  ok.resolve(42)
  assert.equal(await ok.promise, 42)
  const failed = P.withResolvers<number>()
  failed.reject(new Error('no'))
  await assert.rejects(failed.promise, /no/)
  assert.equal(Object.getOwnPropertyDescriptor(Promise, 'withResolvers')?.enumerable, false)
})
