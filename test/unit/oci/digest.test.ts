import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { describe, test } from 'node:test'
import { isDigest, OciError, parseDigest } from '../../../src/oci/index.js'

const sha256 = `sha256:${createHash('sha256').update('hello').digest('hex')}`
const sha512 = `sha512:${createHash('sha512').update('hello').digest('hex')}`

describe('parseDigest', () => {
  const valid: Array<[string, string, 'sha256' | 'sha512']> = [
    ['sha256 of "hello"', sha256, 'sha256'],
    ['sha512 of "hello"', sha512, 'sha512'],
    ['sha256 all zeros', `sha256:${'0'.repeat(64)}`, 'sha256'],
  ]
  for (const [name, input, algorithm] of valid) {
    test(`${name} is valid`, () => {
      assert.deepEqual(parseDigest(input), { digest: input, algorithm, hex: input.slice(algorithm.length + 1) })
      assert.equal(isDigest(input), true)
    })
  }

  const invalid: Array<[string, string]> = [
    ['unknown algorithm', `md5:${'a'.repeat(32)}`],
    ['unknown algorithm with sha256 length', `sha384:${'a'.repeat(64)}`],
    ['uppercase algorithm', `SHA256:${'a'.repeat(64)}`],
    ['sha256 too short', `sha256:${'a'.repeat(63)}`],
    ['sha256 too long', `sha256:${'a'.repeat(65)}`],
    ['sha512 with sha256 length', `sha512:${'a'.repeat(64)}`],
    ['uppercase hex', `sha256:${'A'.repeat(64)}`],
    ['non-hex characters', `sha256:${'g'.repeat(64)}`],
    ['missing colon', `sha256${'a'.repeat(64)}`],
    ['empty hex', 'sha256:'],
    ['empty algorithm', `:${'a'.repeat(64)}`],
    ['empty string', ''],
    ['two colons', `sha256:${'a'.repeat(32)}:${'a'.repeat(31)}`],
    ['surrounding whitespace', ` ${sha256} `],
  ]
  for (const [name, input] of invalid) {
    test(`${name} is DIGEST_INVALID`, () => {
      assert.throws(() => parseDigest(input), (err: unknown) => err instanceof OciError && err.code === 'DIGEST_INVALID' && err.status === 400)
      assert.equal(isDigest(input), false)
    })
  }

  test('the error message names the unsupported algorithm', () => {
    assert.throws(() => parseDigest(`md5:${'a'.repeat(32)}`), /unsupported digest algorithm "md5"/)
  })

  test('a very long input is truncated in the message', () => {
    assert.throws(() => parseDigest('x'.repeat(10_000)), (err: Error) => err.message.length < 200)
  })
})
