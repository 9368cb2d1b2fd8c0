import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { formatPlatform, parsePlatform, platformMatches, type Platform } from '../../../src/oci/index.js'

describe('parsePlatform', () => {
  const valid: Array<[string, Platform]> = [
    ['linux/amd64', { os: 'linux', architecture: 'amd64' }],
    ['linux/x86_64', { os: 'linux', architecture: 'amd64' }],
    ['linux/arm64', { os: 'linux', architecture: 'arm64', variant: 'v8' }],
    ['linux/aarch64', { os: 'linux', architecture: 'arm64', variant: 'v8' }],
    ['linux/arm64/v8', { os: 'linux', architecture: 'arm64', variant: 'v8' }],
    ['linux/arm', { os: 'linux', architecture: 'arm', variant: 'v7' }],
    ['linux/arm/v6', { os: 'linux', architecture: 'arm', variant: 'v6' }],
    ['linux/armhf', { os: 'linux', architecture: 'arm', variant: 'v7' }],
    ['Linux/amd64', { os: 'linux', architecture: 'amd64' }],
    ['windows/amd64', { os: 'windows', architecture: 'amd64' }],
  ]
  for (const [input, expected] of valid) {
    test(`${input} parses`, () => assert.deepEqual(parsePlatform(input), expected))
  }
  const invalid = ['', 'linux', 'linux/', '/amd64', 'linux//v8', 'linux/arm64/v8/extra']
  for (const input of invalid) {
    test(`${JSON.stringify(input)} is a TypeError`, () => assert.throws(() => parsePlatform(input), TypeError))
  }
})

describe('platformMatches', () => {
  const cases: Array<[string, Platform, Platform, boolean]> = [
    ['same os and arch', { os: 'linux', architecture: 'amd64' }, { os: 'linux', architecture: 'amd64' }, true],
    ['x86_64 is an alias of amd64', { os: 'linux', architecture: 'x86_64' }, { os: 'linux', architecture: 'amd64' }, true],
    ['aarch64 is an alias of arm64', { os: 'linux', architecture: 'aarch64' }, { os: 'linux', architecture: 'arm64', variant: 'v8' }, true],
    ['arm64 without variant defaults to v8', { os: 'linux', architecture: 'arm64' }, { os: 'linux', architecture: 'arm64', variant: 'v8' }, true],
    ['arm64/v8 matches an entry with no variant', { os: 'linux', architecture: 'arm64', variant: 'v8' }, { os: 'linux', architecture: 'arm64' }, true],
    ['arm variant mismatch', { os: 'linux', architecture: 'arm', variant: 'v7' }, { os: 'linux', architecture: 'arm', variant: 'v6' }, false],
    ['arm without variant defaults to v7, so not v6', { os: 'linux', architecture: 'arm' }, { os: 'linux', architecture: 'arm', variant: 'v6' }, false],
    ['arm64 v8 vs v9', { os: 'linux', architecture: 'arm64', variant: 'v9' }, { os: 'linux', architecture: 'arm64' }, false],
    ['amd64 wanted with a variant still matches an entry without one', { os: 'linux', architecture: 'amd64', variant: 'v3' }, { os: 'linux', architecture: 'amd64' }, true],
    ['os is compared case-insensitively', { os: 'Linux', architecture: 'amd64' }, { os: 'linux', architecture: 'amd64' }, true],
    ['different os', { os: 'linux', architecture: 'amd64' }, { os: 'windows', architecture: 'amd64' }, false],
    ['different arch', { os: 'linux', architecture: 'amd64' }, { os: 'linux', architecture: 'arm64' }, false],
  ]
  for (const [name, wanted, candidate, expected] of cases) {
    test(name, () => assert.equal(platformMatches(wanted, candidate), expected))
  }
})

describe('formatPlatform', () => {
  test('round-trips through parsePlatform', () => {
    for (const s of ['linux/amd64', 'linux/arm64/v8', 'linux/arm/v6']) assert.equal(formatPlatform(parsePlatform(s)), s)
  })
})
