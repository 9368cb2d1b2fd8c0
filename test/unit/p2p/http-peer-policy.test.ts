// HttpPeerPolicy: the p2p side of the edge's PeerPolicy port (admission with signed peer headers, the owner's fan-out).
import assert from 'node:assert/strict'
import type { IncomingMessage } from 'node:http'
import { describe, test } from 'node:test'
import type { Digest } from '../../../src/oci/index.js'
import { HttpPeerPolicy } from '../../../src/p2p/http-peer-policy.js'
import { OwnerFanout } from '../../../src/p2p/owner-fanout.js'
import { PEER_DIRECT_HEADER, PEER_FROM_HEADER, PEER_HEADER, peerToken } from '../../../src/p2p/peer-auth.js'
import type { Admission } from '../../../src/server/peer-policy.js'

const KEY = new Uint8Array(32).fill(5)
const TARGET = '/v2/team/app/blobs/sha256:0?ns=registry.test'
const digest = `sha256:${'b'.repeat(64)}` as Digest

function request (remoteAddress: string, headers: Record<string, string> = {}): IncomingMessage {
  return { method: 'GET', url: TARGET, headers, socket: { remoteAddress } } as unknown as IncomingMessage
}

void describe('HttpPeerPolicy.admit', () => {
  const signer = peerToken(KEY)
  const cases: Array<[string, () => IncomingMessage, boolean, Admission]> = [
    ['this host without credentials is a client', () => request('127.0.0.1'), true, { kind: 'client' }],
    ['another host without credentials is refused', () => request('10.0.0.2'), true, { kind: 'refused' }],
    ['another host is a client when remote clients are allowed', () => request('10.0.0.2'), false, { kind: 'client' }],
    ['a signed local request is a peer in mode local', () => request('10.0.0.2', { [PEER_HEADER]: signer.sign('local', 'GET', TARGET) }), true, { kind: 'peer', mode: 'local' }],
    ['a signed owner request is a peer in mode owner', () => request('10.0.0.2', { [PEER_HEADER]: signer.sign('owner', 'GET', TARGET) }), true, { kind: 'peer', mode: 'owner' }],
    ['a bad credential is refused, also from this host', () => request('127.0.0.1', { [PEER_HEADER]: 'local nope' }), false, { kind: 'refused' }],
  ]
  for (const [name, req, requireForRemote, expected] of cases) {
    test(name, () => {
      const policy = new HttpPeerPolicy({ credentials: peerToken(KEY), requireForRemote, ownerFanout: new OwnerFanout({ limit: 1 }) })
      assert.deepEqual(policy.admit(req()), expected)
    })
  }
})

void describe('HttpPeerPolicy.enterOwnedBlob', () => {
  test('past the fan-out a peer that says where it is reached is sent to one already streaming it', () => {
    const policy = new HttpPeerPolicy({ credentials: peerToken(KEY), requireForRemote: true, ownerFanout: new OwnerFanout({ limit: 1 }) })
    const first = policy.enterOwnedBlob(request('10.0.0.2', { [PEER_FROM_HEADER]: '10.0.0.2:5000' }), digest)
    assert.equal(first?.redirectTo, undefined, 'the first is served here')
    assert.equal(policy.enterOwnedBlob(request('10.0.0.3', { [PEER_FROM_HEADER]: '10.0.0.3:5000' }), digest)?.redirectTo, '10.0.0.2:5000')
    first?.leave()
  })

  const untracked: Array<[string, Record<string, string>]> = [
    ['a peer asking to be served here', { [PEER_FROM_HEADER]: '10.0.0.3:5000', [PEER_DIRECT_HEADER]: '1' }],
    ['a peer that does not say where it is reached', {}],
    ['a peer whose address is not host:port', { [PEER_FROM_HEADER]: 'http://10.0.0.3:5000/' }],
  ]
  for (const [name, headers] of untracked) {
    test(`${name} is served here, untracked`, () => {
      const fanout = new OwnerFanout({ limit: 1 })
      const policy = new HttpPeerPolicy({ credentials: peerToken(KEY), requireForRemote: true, ownerFanout: fanout })
      policy.enterOwnedBlob(request('10.0.0.2', { [PEER_FROM_HEADER]: '10.0.0.2:5000' }), digest)
      assert.equal(policy.enterOwnedBlob(request('10.0.0.3', headers), digest), undefined)
    })
  }
})
