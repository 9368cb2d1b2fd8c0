import assert from 'node:assert/strict'
import { test } from 'node:test'
import { endpointKey, hostPortOf, parseBootstrapTarget, resolveBootstrapTargets } from '../../../src/p2p/bootstrap-target.js'

const PEER = '12D3KooWSsCXXELmXzeZ4xJ634s9TSY52TnE1rD7a9KYJSWe1Qhv'

void test('parseBootstrapTarget: multiaddrs with and without peer id, dns names with and without port', () => {
  const bare = parseBootstrapTarget('/ip4/10.0.0.1/tcp/5001')
  assert.equal(bare.kind, 'multiaddr')
  assert.equal(bare.kind === 'multiaddr' ? bare.peerId : 'x', undefined)
  const withId = parseBootstrapTarget(` /ip4/10.0.0.1/tcp/5001/p2p/${PEER} `)
  assert.equal(withId.kind === 'multiaddr' ? withId.peerId : undefined, PEER)
  assert.deepEqual(parseBootstrapTarget('/ip6/::1/tcp/5001').kind, 'multiaddr')
  assert.deepEqual(parseBootstrapTarget('/dns4/flotilla.kube-system.svc/tcp/5001').kind, 'multiaddr')
  assert.deepEqual(parseBootstrapTarget('dns:flotilla-headless.kube-system.svc.cluster.local'), { kind: 'dns', name: 'flotilla-headless.kube-system.svc.cluster.local' })
  assert.deepEqual(parseBootstrapTarget('dns:localhost:5001'), { kind: 'dns', name: 'localhost', port: 5001 })
})

void test('parseBootstrapTarget refuses what it cannot dial, naming the entry', () => {
  for (const entry of ['10.0.0.1:5001', '/ip4/10.0.0.1', '/ip4/10.0.0.1/udp/5001', 'dns:', 'dns:bad_name', 'dns:host:70000', 'dns:host:']) {
    assert.throws(() => parseBootstrapTarget(entry), (err: unknown) => err instanceof TypeError && err.message.includes(JSON.stringify(entry)), entry)
  }
})

void test('hostPortOf', async () => {
  const target = parseBootstrapTarget(`/ip4/10.0.0.1/tcp/5001/p2p/${PEER}`)
  assert.ok(target.kind === 'multiaddr')
  assert.deepEqual(hostPortOf(target.addr), { host: '10.0.0.1', port: 5001 })
})

void test('resolveBootstrapTargets expands dns: names, skips our own address, caps per name, reports failures', async () => {
  const failed: string[] = []
  const targets = [
    parseBootstrapTarget('dns:localhost'),
    parseBootstrapTarget('/ip4/10.0.0.9/tcp/5001'),
    parseBootstrapTarget('/ip4/127.0.0.1/tcp/5001'), // ours
    parseBootstrapTarget('dns:does-not-exist.invalid'),
  ]
  const { addrs, total } = await resolveBootstrapTargets(targets, {
    defaultPort: 5001,
    exclude: new Set([endpointKey('127.0.0.1', 5001)]),
    maxPerName: 3,
    onError: (target) => failed.push(target.kind === 'dns' ? target.name : '?'),
  })
  const strings = addrs.map(a => a.toString())
  assert.ok(strings.includes('/ip4/10.0.0.9/tcp/5001'))
  assert.ok(!strings.includes('/ip4/127.0.0.1/tcp/5001'), 'own address excluded, also when found through dns:')
  assert.ok(strings.every(s => s.endsWith('/tcp/5001')))
  assert.ok(total >= 3)
  assert.deepEqual(failed, ['does-not-exist.invalid'])

  const capped = await resolveBootstrapTargets([parseBootstrapTarget('dns:localhost:6000')], {
    defaultPort: 5001, exclude: new Set(), maxPerName: 1, onError: () => {},
  })
  assert.equal(capped.addrs.length, 1)
  assert.match(capped.addrs[0]!.toString(), /\/tcp\/6000$/)
})
