import type { IncomingMessage } from 'node:http'
import { PeerCredentials } from './peer-credentials.js'

/** Header a peer sends on every request, signed for that request (PeerCredentials); its presence is also the loop guard. */
export const PEER_HEADER = 'x-flotilla-peer'

/** On a request to a digest's owner: the asker's `host:port`, so the owner may send others to it (OwnerFanout). */
export const PEER_FROM_HEADER = 'x-flotilla-from'
/** On a request to a digest's owner: serve it yourself, do not send me on (the peer it sent me to failed). */
export const PEER_DIRECT_HEADER = 'x-flotilla-direct'

/**
 * What a peer asks of us: `local` — answer only from what this node holds or is downloading; `owner` — we
 * own the digest (rendezvous), so fetch it upstream if needed, but never ask other peers.
 */
export type PeerMode = 'local' | 'owner'

/** What peers sign their requests with and check others' with, derived from the cluster's pre-shared key. */
export function peerToken (clusterKey: Uint8Array): PeerCredentials {
  return new PeerCredentials(clusterKey)
}

export function isLoopback (address: string | undefined): boolean {
  if (address === undefined) return false
  return address === '::1' || address.startsWith('127.') || address.startsWith('::ffff:127.')
}

/**
 * Checks a request: a peer request needs a header signed for its method and target, not seen before; with
 * `requireForRemote`, anything not from loopback must be a peer request.
 */
export function checkPeerRequest (req: IncomingMessage, credentials: PeerCredentials | undefined, requireForRemote: boolean): { ok: boolean, mode?: PeerMode } {
  const header = req.headers[PEER_HEADER]
  const value = Array.isArray(header) ? header[0] : header
  if (value === undefined) return { ok: !requireForRemote || isLoopback(req.socket.remoteAddress) }
  // The raw target as it came: what the asker signed, before any parsing of ours.
  const mode = credentials?.verify(value, req.method ?? 'GET', req.url ?? '/')
  return mode === undefined ? { ok: false } : { ok: true, mode }
}
