import assert from 'node:assert/strict'
import { Readable } from 'node:stream'
import { describe, test } from 'node:test'
import { firstHeader } from '../../../src/http/first-header.js'
import { readLimited } from '../../../src/http/read-limited.js'

void describe('readLimited', () => {
  const cases: Array<[string, number[], number, number | undefined]> = [
    ['empty body', [], 10, 0],
    ['exactly the limit', [4, 6], 10, 10],
    ['one byte over', [4, 7], 10, undefined],
    ['over in the first chunk', [11], 10, undefined],
  ]
  for (const [name, chunks, limit, expected] of cases) {
    test(name, async () => {
      const body = Readable.from(chunks.map((n) => Buffer.alloc(n, 1)))
      assert.equal((await readLimited(body, limit))?.byteLength, expected)
      if (expected === undefined) assert.equal(body.destroyed, true, 'a body over the limit is not read on')
    })
  }
})

void test('firstHeader: the first of repeated values, undefined when absent', () => {
  assert.equal(firstHeader({ 'set-cookie': ['a', 'b'] }, 'set-cookie'), 'a')
  assert.equal(firstHeader({ location: '/x' }, 'location'), '/x')
  assert.equal(firstHeader({}, 'location'), undefined)
})
