// The edge without peers: the default PeerPolicy.
import assert from 'node:assert/strict'
import type { IncomingMessage } from 'node:http'
import { test } from 'node:test'
import type { Digest } from '../../../src/oci/index.js'
import { clientsOnlyPolicy, PEER_HEADER } from '../../../src/server/peer-policy.js'

function request (headers: Record<string, string> = {}): IncomingMessage {
  return { method: 'GET', url: '/v2/', headers, socket: { remoteAddress: '127.0.0.1' } } as unknown as IncomingMessage
}

void test('clientsOnlyPolicy refuses anything carrying the peer header, admits the rest as clients, tracks no blob', () => {
  const policy = clientsOnlyPolicy()
  assert.deepEqual(policy.admit(request()), { kind: 'client' })
  assert.deepEqual(policy.admit(request({ [PEER_HEADER]: 'local 1 2 3' })), { kind: 'refused' })
  assert.equal(policy.enterOwnedBlob(request({ 'x-flotilla-from': '10.0.0.2:5000' }), `sha256:${'c'.repeat(64)}` as Digest), undefined)
})
