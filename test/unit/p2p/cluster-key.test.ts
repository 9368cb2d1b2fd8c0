import assert from 'node:assert/strict'
import { test } from 'node:test'
import { generateClusterKey, parseClusterKey } from '../../../src/p2p/cluster-key.js'
import { P2pError } from '../../../src/p2p/errors.js'

const HEX = '0123456789abcdef'.repeat(4)
const CANONICAL = `/key/swarm/psk/1.0.0/\n/base16/\n${HEX}`

void test('generateClusterKey writes a pnet key file that parses back', () => {
  const text = generateClusterKey()
  assert.match(text, /^\/key\/swarm\/psk\/1\.0\.0\/\n\/base16\/\n[0-9a-f]{64}\n$/)
  assert.equal(new TextDecoder().decode(parseClusterKey(text)), text.trimEnd())
  assert.notEqual(generateClusterKey(), text)
})

void test('parseClusterKey accepts the forms people write and normalises them', () => {
  const accepted: Array<string | Uint8Array> = [
    CANONICAL,
    `${CANONICAL}\n`,
    CANONICAL.replaceAll('\n', '\r\n'),
    `\uFEFF  ${CANONICAL.toUpperCase().replace('/KEY/SWARM/PSK/1.0.0/', '/key/swarm/psk/1.0.0/').replace('/BASE16/', '/base16/')}  \n\n`,
    new TextEncoder().encode(`${CANONICAL}\n`),
  ]
  for (const input of accepted) {
    assert.equal(new TextDecoder().decode(parseClusterKey(input)), CANONICAL, JSON.stringify(input))
  }
})

void test('parseClusterKey names what is wrong with a bad file', () => {
  const cases: Array<[string, RegExp]> = [
    ['', /expected 3 lines.*got 1 line/],
    [HEX, /got 1 line/],
    [`/key/swarm/psk/1.0.0/\n/base16/\n${HEX}\nextra`, /got 4 line/],
    [`/key/swarm/psk/2.0.0/\n/base16/\n${HEX}`, /line 1 must be/],
    [`/key/swarm/psk/1.0.0/\n/base64/\n${HEX}`, /line 2 must be "\/base16\/"/],
    [`/key/swarm/psk/1.0.0/\n/base16/\n${HEX.slice(2)}`, /line 3 must be 64 hex characters.*got 62/],
    [`/key/swarm/psk/1.0.0/\n/base16/\n${HEX.slice(1)}z`, /line 3 must be 64 hex/],
  ]
  for (const [input, message] of cases) {
    assert.throws(() => parseClusterKey(input), (err: unknown) => {
      assert.ok(err instanceof P2pError)
      assert.equal(err.code, 'ERR_CLUSTER_KEY_INVALID')
      assert.match(err.message, message)
      assert.ok(!err.message.includes(HEX.slice(2, 40)), 'the key itself is never echoed')
      return true
    }, JSON.stringify(input))
  }
})
