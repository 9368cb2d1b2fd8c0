import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { parseRetryAfter } from '../../../src/upstream/retry-after.js'

const NOW = Date.parse('2025-01-01T00:00:00Z')

const cases: Array<[string | undefined, number | undefined]> = [
  ['0', 0],
  ['3', 3000],
  [' 120 ', 120_000],
  ['Wed, 01 Jan 2025 00:00:10 GMT', 10_000],
  ['Tue, 31 Dec 2024 23:59:00 GMT', 0],
  ['-1', undefined],
  ['1.5', undefined],
  ['soon', undefined],
  ['', undefined],
  [undefined, undefined],
]

void describe('parseRetryAfter', () => {
  for (const [value, expected] of cases) {
    void test(JSON.stringify(value), () => assert.equal(parseRetryAfter(value, NOW), expected))
  }
})
