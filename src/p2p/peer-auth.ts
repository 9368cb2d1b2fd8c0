import type { IncomingMessage } from 'node:http'
import { firstHeader } from '../http/first-header.js'
import { isLoopbackAddress } from '../http/is-loopback-address.js'
import { PEER_HEADER, type PeerMode } from '../server/peer-policy.js'
import { PeerCredentials } from './peer-credentials.js'

// The edge owns the peer header's name and the modes (it refuses the header when there are no peers).
export { PEER_HEADER, type PeerMode }

/** On a request to a digest's owner: the asker's `host:port`, so the owner may send others to it (OwnerFanout). */
export const PEER_FROM_HEADER = 'x-flotilla-from'
/** On a request to a digest's owner: serve it yourself, do not send me on (the peer it sent me to failed). */
export const PEER_DIRECT_HEADER = 'x-flotilla-direct'

/** What peers sign their requests with and check others' with, derived from the cluster's pre-shared key. */
export function peerToken (clusterKey: Uint8Array): PeerCredentials {
  return new PeerCredentials(clusterKey)
}

/**
 * Checks a request: a peer request needs a header signed for its method and target, not seen before; with
 * `requireForRemote`, anything not from loopback must be a peer request.
 */
export function checkPeerRequest (req: IncomingMessage, credentials: PeerCredentials | undefined, requireForRemote: boolean): { ok: boolean, mode?: PeerMode } {
  const value = firstHeader(req.headers, PEER_HEADER)
  if (value === undefined) return { ok: !requireForRemote || isLoopbackAddress(req.socket.remoteAddress) }
  // The raw target as it came: what the asker signed, before any parsing of ours.
  const mode = credentials?.verify(value, req.method ?? 'GET', req.url ?? '/')
  return mode === undefined ? { ok: false } : { ok: true, mode }
}
