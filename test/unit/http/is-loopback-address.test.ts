import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { isLoopbackAddress } from '../../../src/http/is-loopback-address.js'

describe('isLoopbackAddress', () => {
  const cases: Array<[string | undefined, boolean]> = [
    ['127.0.0.1', true], ['127.1.2.3', true], ['::1', true], ['::ffff:127.0.0.1', true],
    ['10.0.0.1', false], ['192.0.2.2', false], ['::ffff:10.0.0.1', false], ['::', false], ['0.0.0.0', false],
    ['fe80::1', false], ['127.example.com', false], ['', false], [undefined, false],
  ]
  for (const [address, expected] of cases) test(`${String(address)} → ${expected}`, () => assert.equal(isLoopbackAddress(address), expected))
})
