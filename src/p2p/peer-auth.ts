import { createHmac, timingSafeEqual } from 'node:crypto'
import type { IncomingMessage } from 'node:http'

/** Header a peer sends on every request: `<mode> <token>`; its presence is also the loop guard. */
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

/** The credential peers present, derived from the cluster's pre-shared key (never the key itself). */
export function peerToken (clusterKey: Uint8Array): string {
  return createHmac('sha256', clusterKey).update('flotilla peer http v1').digest('base64url')
}

export function peerHeaderValue (mode: PeerMode, token: string): string {
  return `${mode} ${token}`
}

export function isLoopback (address: string | undefined): boolean {
  if (address === undefined) return false
  return address === '::1' || address.startsWith('127.') || address.startsWith('::ffff:127.')
}

/** Checks a request: peer requests need the token; with `requireForRemote`, so does anything not from loopback. */
export function checkPeerRequest (req: IncomingMessage, token: string | undefined, requireForRemote: boolean): { ok: boolean, mode?: PeerMode } {
  const header = req.headers[PEER_HEADER]
  const value = Array.isArray(header) ? header[0] : header
  if (value === undefined) return { ok: !requireForRemote || isLoopback(req.socket.remoteAddress) }
  const [mode, presented] = value.split(' ')
  if (token === undefined || presented === undefined || (mode !== 'local' && mode !== 'owner')) return { ok: false }
  const a = Buffer.from(presented)
  const b = Buffer.from(token)
  return { ok: a.length === b.length && timingSafeEqual(a, b), mode }
}
