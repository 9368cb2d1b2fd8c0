import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { buildConfig, ConfigError } from '../../../src/config/load-config.js'
import { parseSize } from '../../../src/config/size.js'

describe('parseSize', () => {
  const cases: Array<[string | number, number]> = [
    ['0', 0], ['1024', 1024], [4096, 4096], ['150MB', 150_000_000], ['150mb', 150_000_000], ['1.5G', 1_500_000_000],
    ['20GiB', 20 * 2 ** 30], ['512Ki', 512 * 1024], ['1 TiB', 2 ** 40], ['10kB', 10_000], ['7B', 7], ['64MiB', 64 * 2 ** 20],
  ]
  for (const [input, bytes] of cases) test(`${JSON.stringify(input)} is ${bytes} bytes`, () => { assert.equal(parseSize(input), bytes) })

  for (const bad of ['', 'MB', '-1MB', '1.2.3GB', '10 parsecs', '5XB', '1e9']) {
    test(`${JSON.stringify(bad)} is refused`, () => { assert.throws(() => parseSize(bad), TypeError) })
  }
  test('a negative or infinite number is refused', () => {
    assert.throws(() => parseSize(-1), TypeError)
    assert.throws(() => parseSize(Infinity), TypeError)
  })
})

describe('store budget options', () => {
  test('defaults: no byte limit, evict past 75 % of the disk, down to 90 % of the budget', () => {
    assert.deepEqual(buildConfig({}).store, { maxDiskPercent: 75, lowWaterPercent: 90 })
  })

  test('from the file, the environment and flags', () => {
    assert.deepEqual(buildConfig({ store: { maxBytes: '150MB', maxDiskPercent: 60, lowWaterPercent: 80 } }).store,
      { maxBytes: 150_000_000, maxDiskPercent: 60, lowWaterPercent: 80 })
    assert.equal(buildConfig({}, { storeMaxBytes: '20GiB', storeMaxDiskPercent: '50' }).store.maxBytes, 20 * 2 ** 30)
    assert.equal(buildConfig({}, { storeMaxDiskPercent: '50' }).store.maxDiskPercent, 50)
  })

  test('bad values name the field', () => {
    assert.throws(() => buildConfig({ store: { maxBytes: 'lots' } }), (err) => err instanceof ConfigError && /store\.maxBytes/.test(err.message))
    assert.throws(() => buildConfig({ store: { maxDiskPercent: 0 } }), (err) => err instanceof ConfigError && /store\.maxDiskPercent/.test(err.message))
    assert.throws(() => buildConfig({ store: { maxDiskPercent: 120 } }), ConfigError)
    assert.throws(() => buildConfig({ store: { lowWaterPercent: 101 } }), ConfigError)
    assert.throws(() => buildConfig({ store: { maxBites: '1GB' } }), ConfigError)
  })
})
