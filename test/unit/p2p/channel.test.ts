import assert from 'node:assert/strict'
import { test } from 'node:test'
import { Channel, linkSignals } from '../../../src/p2p/channel.js'

void test('Channel yields pushed items in order and ends', async () => {
  const channel = new Channel<number>()
  channel.push(1)
  setTimeout(() => { channel.push(2); channel.push(3); channel.end(); channel.push(4) }, 5)
  const seen: number[] = []
  for await (const n of channel) seen.push(n)
  assert.deepEqual(seen, [1, 2, 3])
})

void test('linkSignals follows any parent, times out, and detaches', async () => {
  const parent = new AbortController()
  const linked = linkSignals([parent.signal, undefined])
  parent.abort(new Error('parent'))
  assert.equal(linked.signal.aborted, true)
  assert.match(String((linked.signal.reason as Error).message), /parent/)

  const timed = linkSignals([], 10)
  await new Promise(resolve => setTimeout(resolve, 30))
  assert.equal(timed.signal.aborted, true)
  assert.equal((timed.signal.reason as DOMException).name, 'TimeoutError')

  const other = new AbortController()
  const detached = linkSignals([other.signal], 1_000)
  detached.dispose()
  other.abort()
  assert.equal(detached.signal.aborted, false, 'disposed: no longer follows the parent')

  const own = linkSignals([new AbortController().signal])
  own.abort()
  assert.equal(own.signal.aborted, true)

  const already = new AbortController()
  already.abort()
  assert.equal(linkSignals([already.signal]).signal.aborted, true)
})
