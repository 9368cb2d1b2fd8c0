import type { IncomingMessage } from 'node:http'
import { firstHeader } from '../http/first-header.js'
import { isLoopbackAddress } from '../http/is-loopback-address.js'
import { PEER_BACK_PARAM, PEER_HEADER, PEER_PARAM, peerParam, type PeerMode } from '../server/peer-policy.js'
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
 * Where a client of this node gets a blob from a peer (`http://host:port/v2/<repo>/blobs/<digest>?ns=…`):
 * `target` with a credential for a GET of it in `mode` in PEER_PARAM (last). Good for that target only, within
 * the clock window, and more than once (the client's HTTP stack may retry it). `back`, for the digest's owner:
 * where it sends the client back when it streams the digest to enough others (signed with the rest).
 */
export function signedLocation (credentials: PeerCredentials, httpAddress: string, target: string, mode: PeerMode = 'local', back?: string): string {
  const signed = back === undefined ? target : `${target}${target.includes('?') ? '&' : '?'}${PEER_BACK_PARAM}=${encodeURIComponent(back)}`
  const credential = credentials.sign(mode, 'GET', signed)
  return `http://${httpAddress}${signed}${signed.includes('?') ? '&' : '?'}${PEER_PARAM}=${encodeURIComponent(credential)}`
}

/**
 * Checks a request: a peer request needs a header signed for its method and target, not seen before, or a
 * signed location (`signedLocation`, a GET within the clock window); with `requireForRemote`, anything not
 * from loopback must be one of these.
 */
export function checkPeerRequest (req: IncomingMessage, credentials: PeerCredentials | undefined, requireForRemote: boolean): { ok: boolean, mode?: PeerMode } {
  const value = firstHeader(req.headers, PEER_HEADER)
  if (value === undefined) {
    const inQuery = peerParam(req.url ?? '/')
    if (inQuery === undefined) return { ok: !requireForRemote || isLoopbackAddress(req.socket.remoteAddress) }
    const mode = credentials?.verify(inQuery.credential, req.method ?? 'GET', inQuery.target, true)
    return mode === undefined ? { ok: false } : { ok: true, mode }
  }
  // The raw target as it came: what the asker signed, before any parsing of ours.
  const mode = credentials?.verify(value, req.method ?? 'GET', req.url ?? '/')
  return mode === undefined ? { ok: false } : { ok: true, mode }
}
