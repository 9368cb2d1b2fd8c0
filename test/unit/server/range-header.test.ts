import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { OciError } from '../../../src/oci/index.js'
import { parseRangeHeader } from '../../../src/server/range-header.js'
import type { ByteRange } from '../../../src/store/blob-store.js'

describe('parseRangeHeader', () => {
  const satisfiable: Array<[string | undefined, number, ByteRange | undefined]> = [
    [undefined, 10, undefined],
    ['bytes=0-9', 10, { start: 0, end: 9 }],
    ['bytes=0-0', 10, { start: 0, end: 0 }],
    ['bytes=3-5', 10, { start: 3, end: 5 }],
    ['bytes=5-', 10, { start: 5, end: 9 }],
    ['bytes=9-', 10, { start: 9, end: 9 }],
    ['bytes=-3', 10, { start: 7, end: 9 }],
    ['bytes=-10', 10, { start: 0, end: 9 }],
    ['bytes=-100', 10, { start: 0, end: 9 }],
    ['bytes=5-100', 10, { start: 5, end: 9 }],
    ['bytes=0-99999999999999999999', 10, { start: 0, end: 9 }],
    [' bytes=0-9 ', 10, { start: 0, end: 9 }],
    // Several ranges are answered with the whole blob.
    ['bytes=0-1,3-4', 10, undefined],
    ['bytes=0-1, 5-', 10, undefined],
    ['bytes=-1,-2', 10, undefined],
    // Units compare case-insensitively (RFC 9110 §14.1).
    ['BYTES=3-5', 10, { start: 3, end: 5 }],
  ]
  for (const [header, size, expected] of satisfiable) {
    test(`${JSON.stringify(header)} of ${size} bytes → ${JSON.stringify(expected)}`, () => assert.deepEqual(parseRangeHeader(header, size), expected))
  }

  // Defect 3 (issue 8): a unit we do not understand is ignored (RFC 9110 §14.2), the answer is the whole body.
  const unknownUnits: Array<[string, number]> = [['items=0-10', 10], ['items=0-9', 0], ['Items=5-', 10], ['x-custom=garbage', 10], ['rows=-', 10]]
  for (const [header, size] of unknownUnits) {
    test(`defect 3: ${JSON.stringify(header)} (unknown unit) of ${size} bytes is ignored → whole body`, () => assert.equal(parseRangeHeader(header, size), undefined))
  }

  const invalid: Array<[string, number]> = [
    ['bytes=10-', 10],
    ['bytes=10-20', 10],
    ['bytes=0-', 0],
    ['bytes=-1', 0],
    ['bytes=-0', 10],
    ['bytes=5-3', 10],
    ['bytes=-', 10],
    ['bytes=', 10],
    ['bytes=a-b', 10],
    ['bytes=1-2-3', 10],
    ['bytes 0-9', 10],
    ['0-9', 10],
    ['', 10],
    ['bytes=0x1-2', 10],
    ['bytes=0-1,a-b', 10],
  ]
  for (const [header, size] of invalid) {
    test(`${JSON.stringify(header)} of ${size} bytes is RANGE_INVALID (416)`, () => {
      assert.throws(() => parseRangeHeader(header, size), (err: unknown) => {
        assert.ok(err instanceof OciError)
        assert.equal(err.code, 'RANGE_INVALID')
        assert.equal(err.status, 416)
        assert.deepEqual(err.detail, { size }, 'the size travels with the error for Content-Range: bytes */size')
        return true
      })
    })
  }
})
