import type { IncomingMessage } from 'node:http'
import type { Digest } from '../oci/index.js'

/**
 * Header every request from a peer carries (signed for that request by the p2p side); its presence is also
 * the loop guard. The edge owns the name: without a peer policy, a request carrying it is refused.
 */
export const PEER_HEADER = 'x-flotilla-peer'

/**
 * The same credential as a query parameter, last in the query: a location a node hands a client of its own
 * (a 307 to a peer that holds a blob, or to its owner), which the client follows without our header. Like the
 * header, refused by a node without peers.
 */
export const PEER_PARAM = 'flotilla-peer'
const PEER_PARAM_AT = new RegExp(`[?&]${PEER_PARAM}=`)

/**
 * On a location that sends a node's client to a digest's owner (signed with it): `host:port` the client reached
 * its node at, where the owner sends it back when it streams the digest to enough others already.
 */
export const PEER_BACK_PARAM = 'flotilla-back'

/** The query without this node's own parameters (PEER_PARAM, PEER_BACK_PARAM): what a location passes on. */
export function withoutPeerParams (params: URLSearchParams): string {
  const kept = new URLSearchParams(params)
  kept.delete(PEER_PARAM)
  kept.delete(PEER_BACK_PARAM)
  return kept.toString()
}

/**
 * The credential a request target carries in `PEER_PARAM`, and the target it signs (everything before it);
 * `credential` is empty when the parameter is there but is not the last one, or is badly encoded.
 */
export function peerParam (target: string): { readonly target: string, readonly credential: string } | undefined {
  // Every request without the peer header comes through here: most have no query at all.
  if (!target.includes(PEER_PARAM)) return undefined
  const at = target.search(PEER_PARAM_AT)
  if (at === -1) return undefined
  const raw = target.slice(at + PEER_PARAM.length + 2)
  return { target: target.slice(0, at), credential: raw.includes('&') ? '' : decodeOrEmpty(raw) }
}

function decodeOrEmpty (s: string): string {
  try {
    return decodeURIComponent(s)
  } catch {
    return ''
  }
}

/**
 * What a peer asks of us: `local` — answer only from what this node holds or is downloading; `owner` — we
 * own the digest (rendezvous), so fetch it upstream if needed, but never ask other peers.
 */
export type PeerMode = 'local' | 'owner'

/** Who is asking: a client of this node, a peer in a mode, or someone to refuse (401). */
export type Admission =
  | { readonly kind: 'client' }
  | { readonly kind: 'peer', readonly mode: PeerMode }
  | { readonly kind: 'refused' }

/** A blob GET a peer made to this node, the digest's owner. */
export interface OwnedBlobTicket {
  /** `host:port` of the peer to send the asker to (a 307) instead of serving it here. */
  readonly redirectTo?: string
  /** The response served here ended. */
  leave (): void
}

/**
 * The edge's one view of peers: who may ask, in which mode, and where a peer's request for a blob this node
 * owns is served. The p2p side implements it; the composition root wires it.
 */
export interface PeerPolicy {
  admit (req: IncomingMessage): Admission
  /**
   * For a peer's GET (mode `owner`) of a blob: a ticket (served here, or sent on to another peer), or
   * undefined when this request is served here with no bookkeeping.
   */
  enterOwnedBlob (req: IncomingMessage, digest: Digest): OwnedBlobTicket | undefined
}

/** The policy of a node without peers: everyone but a request that says it is from a peer. */
export function clientsOnlyPolicy (): PeerPolicy {
  return {
    admit: (req) => req.headers[PEER_HEADER] === undefined && peerParam(req.url ?? '/') === undefined ? { kind: 'client' } : { kind: 'refused' },
    enterOwnedBlob: () => undefined,
  }
}
