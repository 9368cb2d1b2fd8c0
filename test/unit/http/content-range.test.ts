import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { parseContentRange, type ContentRange } from '../../../src/http/content-range.js'

const cases: Array<[string | undefined, ContentRange | undefined]> = [
  ['bytes 5-9/10', { start: 5, end: 9, total: 10 }],
  ['bytes 0-0/1', { start: 0, end: 0, total: 1 }],
  ['bytes 5-9/*', { start: 5, end: 9 }],
  ['bytes 9-5/10', undefined],
  ['bytes 5-10/10', undefined],
  ['bytes */10', undefined],
  ['items 1-2/3', undefined],
  [undefined, undefined],
]

void describe('parseContentRange', () => {
  for (const [value, expected] of cases) {
    void test(JSON.stringify(value), () => assert.deepEqual(parseContentRange(value), expected))
  }
})
