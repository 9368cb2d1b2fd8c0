import assert from 'node:assert/strict'
import { test } from 'node:test'
import { OwnerFanout } from '../../../src/p2p/owner-fanout.js'

const D = 'sha256:' + 'a'.repeat(64)

void test('up to the limit peers are served here; the next ones go down a tree with at most `limit` per peer', () => {
  const f = new OwnerFanout({ limit: 2 })
  const served = [f.enter(D, 'p1:5000'), f.enter(D, 'p2:5000')]
  assert.deepEqual(served.map((t) => t.redirectTo), [undefined, undefined])
  const sent = ['p3', 'p4', 'p5', 'p6', 'p7', 'p8'].map((p) => f.enter(D, `${p}:5000`).redirectTo)
  // p1 and p2 take two each, then p3 (the first sent on) takes two
  assert.deepEqual(sent, ['p1:5000', 'p1:5000', 'p2:5000', 'p2:5000', 'p3:5000', 'p3:5000'])
  const counts = new Map<string, number>()
  for (const to of sent) counts.set(to ?? '', (counts.get(to ?? '') ?? 0) + 1)
  for (const n of counts.values()) assert.ok(n <= 2)
})

void test('a peer of the tree asking again is served here; a finished stream frees its place', () => {
  const f = new OwnerFanout({ limit: 1 })
  const first = f.enter(D, 'p1:5000')
  assert.equal(first.redirectTo, undefined)
  assert.equal(f.enter(D, 'p2:5000').redirectTo, 'p1:5000')
  assert.equal(f.enter(D, 'p2:5000').redirectTo, undefined, 'its source failed: it asks here again')
  first.leave()
  first.leave()
  const again = f.enter(D, 'p9:5000')
  assert.equal(again.redirectTo, 'p2:5000', 'one stream (p2) is still served here; p1 has no room left')
  assert.equal(f.enter('sha256:' + 'b'.repeat(64), 'p9:5000').redirectTo, undefined, 'other digests have their own tree')
})

void test('when every peer of the tree is full the owner serves past its limit rather than refusing', () => {
  const f = new OwnerFanout({ limit: 1 })
  assert.equal(f.enter(D, 'a:1').redirectTo, undefined)
  assert.equal(f.enter(D, 'b:1').redirectTo, 'a:1')
  assert.equal(f.enter(D, 'c:1').redirectTo, 'b:1')
  const nodes = ['d:1', 'e:1'].map((p) => f.enter(D, p).redirectTo)
  assert.deepEqual(nodes, ['c:1', 'd:1'])
})

void test('idle trees are forgotten after the linger time; bad limits are refused', () => {
  let now = 0
  const f = new OwnerFanout({ limit: 1, lingerMs: 1000, now: () => now })
  f.enter(D, 'a:1').leave()
  now = 500
  assert.equal(f.enter(D, 'b:1').redirectTo, undefined, 'no stream now: served here')
  assert.equal(f.size, 1)
  now = 10_000
  f.enter('sha256:' + 'c'.repeat(64), 'x:1')
  assert.equal(f.size, 2, 'the first tree still has a stream (b)')
  assert.throws(() => new OwnerFanout({ limit: 0 }), TypeError)
  assert.throws(() => new OwnerFanout({ limit: 1.5 }), TypeError)
})

void test('clients other nodes sent here (leaves) take places of the limit but never join the tree', () => {
  const f = new OwnerFanout({ limit: 2 })
  const leaves = [f.enterLeaf(D), f.enterLeaf(D)]
  assert.ok(leaves.every((t) => t !== undefined && t.redirectTo === undefined))
  assert.equal(f.enterLeaf(D), undefined, 'past the limit a leaf is refused (its node gets it through the tree)')
  leaves[0]?.leave()
  assert.notEqual(f.enterLeaf(D), undefined, 'a finished leaf frees its place')
  // A node that relays is served here: no node of the tree to send it to, the leaves pass nothing on.
  assert.equal(f.enter(D, 'p1:5000').redirectTo, undefined)
  assert.equal(f.enter(D, 'p2:5000').redirectTo, 'p1:5000')
})
