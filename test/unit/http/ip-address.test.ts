import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { parseCidr, parseIp, PrefixMap } from '../../../src/http/ip-address.js'

describe('parseIp', () => {
  const cases: Array<[string, { family: 4 | 6, value: bigint } | undefined]> = [
    ['10.1.4.7', { family: 4, value: 0x0a010407n }],
    ['0.0.0.0', { family: 4, value: 0n }],
    ['255.255.255.255', { family: 4, value: 0xffffffffn }],
    ['::ffff:10.1.4.7', { family: 4, value: 0x0a010407n }],
    ['::1', { family: 6, value: 1n }],
    ['::', { family: 6, value: 0n }],
    ['2001:db8::1', { family: 6, value: 0x20010db8000000000000000000000001n }],
    ['2001:db8:1:2:3:4:5:6', { family: 6, value: 0x20010db8000100020003000400050006n }],
    ['fe80::1%eth0', { family: 6, value: 0xfe800000000000000000000000000001n }],
    ['64:ff9b::1.2.3.4', { family: 6, value: 0x0064ff9b000000000000000001020304n }],
    ['10.1.4', undefined], ['nonsense', undefined], ['', undefined], ['1.2.3.4.5', undefined],
  ]
  for (const [input, expected] of cases) it(JSON.stringify(input), () => { assert.deepEqual(parseIp(input), expected) })
})

describe('parseCidr', () => {
  const cases: Array<[string, ReturnType<typeof parseCidr>]> = [
    ['10.0.0.0/8', { family: 4, prefix: 8, network: 10n }],
    ['10.1.4.0/24', { family: 4, prefix: 24, network: 0x0a0104n }],
    ['10.1.4.7', { family: 4, prefix: 32, network: 0x0a010407n }],
    ['0.0.0.0/0', { family: 4, prefix: 0, network: 0n }],
    ['2001:db8:1::/48', { family: 6, prefix: 48, network: 0x20010db80001n }],
    ['::ffff:10.0.0.0/104', { family: 4, prefix: 8, network: 10n }],
    ['10.0.0.0/33', undefined], ['2001:db8::/129', undefined], ['10.0.0.0/x', undefined], ['', undefined], ['/8', undefined],
  ]
  for (const [input, expected] of cases) it(JSON.stringify(input), () => { assert.deepEqual(parseCidr(input), expected) })
})

describe('PrefixMap', () => {
  it('the longest prefix wins, per family; nothing matches outside', () => {
    const m = new PrefixMap<string>()
    for (const [cidr, name] of [['10.1.0.0/16', 'eu-west'], ['10.1.4.0/24', 'eu-west-1a'], ['2001:db8:1::/48', 'eu-west'], ['2001:db8:1:4::/64', 'v6-1a'], ['192.168.0.1', 'host']]) {
      assert.equal(m.add(cidr as string, name as string), true)
    }
    assert.equal(m.add('bad/99', 'x'), false)
    assert.equal(m.match('10.1.4.7'), 'eu-west-1a')
    assert.equal(m.match('10.1.5.7'), 'eu-west')
    assert.equal(m.match('::ffff:10.1.4.200'), 'eu-west-1a')
    assert.equal(m.match('2001:db8:1:4::9'), 'v6-1a')
    assert.equal(m.match('2001:db8:1:5::9'), 'eu-west')
    assert.equal(m.match('192.168.0.1'), 'host')
    assert.equal(m.match('192.168.0.2'), undefined)
    assert.equal(m.match('10.2.0.1'), undefined)
    assert.equal(m.match('not an address'), undefined)
  })

  it('thousands of networks: a match stays cheap', () => {
    const m = new PrefixMap<number>()
    for (let i = 0; i < 4096; i++) m.add(`10.${i >> 8}.${i & 255}.0/24`, i)
    for (let i = 0; i < 1024; i++) m.add(`2001:db8:${i.toString(16)}::/48`, i)
    assert.equal(m.match('10.15.255.3'), 4095)
    assert.equal(m.match('2001:db8:3ff::1'), 1023)
  })
})
