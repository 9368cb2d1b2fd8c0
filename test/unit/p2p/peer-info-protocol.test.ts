import assert from 'node:assert/strict'
import { test } from 'node:test'
import { P2pError } from '../../../src/p2p/errors.js'
import { decodeInfoMessage, encodePeerInfo, infoProtocol } from '../../../src/p2p/peer-info-protocol.js'

void test('peer info round-trips, with and without zone', () => {
  assert.deepEqual(decodeInfoMessage('p1', encodePeerInfo({ httpAddress: '10.0.0.1:5000', zone: 'eu-1a' })).info, { id: 'p1', httpAddress: '10.0.0.1:5000', zone: 'eu-1a' })
  assert.deepEqual(decodeInfoMessage('p2', encodePeerInfo({ httpAddress: '[fd00::1]:5000' })).info, { id: 'p2', httpAddress: '[fd00::1]:5000' })
  assert.equal(infoProtocol('/flotilla'), '/flotilla/info/1.0.0')
})

void test('malformed peer info is refused', () => {
  const bad = ['not json', '[]', 'null', '{}', '{"httpAddress":"no-port"}', '{"httpAddress":"h:0"}', '{"httpAddress":"h:1","zone":5}', `{"httpAddress":"h:1","zone":"${'z'.repeat(300)}"}`]
  for (const text of bad) {
    assert.throws(() => decodeInfoMessage('p', new TextEncoder().encode(text)), (err: unknown) => err instanceof P2pError && err.code === 'ERR_PEER_INFO_INVALID', text)
  }
})

void test('the info message carries the peer list; a malformed list is dropped, not the info', () => {
  const peers = ['/ip4/10.0.0.2/tcp/5001/p2p/12D3KooWA', '/ip4/10.0.0.3/tcp/5001/p2p/12D3KooWB']
  assert.deepEqual(decodeInfoMessage('p1', encodePeerInfo({ httpAddress: '10.0.0.1:5000' }, peers)),
    { info: { id: 'p1', httpAddress: '10.0.0.1:5000' }, peers })
  assert.deepEqual(decodeInfoMessage('p1', encodePeerInfo({ httpAddress: '10.0.0.1:5000' })).peers, [])
  for (const list of [5, [1, 2], [''], ['x'.repeat(600)], 'a']) {
    const bytes = new TextEncoder().encode(JSON.stringify({ httpAddress: 'h:1', peers: list }))
    assert.deepEqual(decodeInfoMessage('p', bytes), { info: { id: 'p', httpAddress: 'h:1' }, peers: [] }, JSON.stringify(list))
  }
})
