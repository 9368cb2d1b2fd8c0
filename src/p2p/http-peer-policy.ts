import type { IncomingMessage } from 'node:http'
import { firstHeader } from '../http/first-header.js'
import type { Digest } from '../oci/index.js'
import { PEER_BACK_PARAM, peerParam, type Admission, type OwnedBlobTicket, type PeerPolicy } from '../server/peer-policy.js'
import type { OwnerFanout } from './owner-fanout.js'
import { checkPeerRequest, PEER_DIRECT_HEADER, PEER_FROM_HEADER, PEER_HEADER } from './peer-auth.js'
import type { PeerCredentials } from './peer-credentials.js'
import { isHostPort } from './router.js'

export interface HttpPeerPolicyOptions {
  /** Checks the signed peer header of each request. */
  readonly credentials: PeerCredentials
  /** Refuse anything not from loopback that is not a peer request (an agent serves its own node and its peers). */
  readonly requireForRemote: boolean
  /** Bounds how many peers this node streams a digest it owns to (the rest are sent to those peers). */
  readonly ownerFanout: OwnerFanout
}

/** The PeerPolicy of a node with peers: signed peer headers over HTTP, and the owner's fan-out. */
export class HttpPeerPolicy implements PeerPolicy {
  readonly #o: HttpPeerPolicyOptions

  constructor (options: HttpPeerPolicyOptions) {
    this.#o = options
  }

  admit (req: IncomingMessage): Admission {
    const check = checkPeerRequest(req, this.#o.credentials, this.#o.requireForRemote)
    if (!check.ok) return { kind: 'refused' }
    return check.mode === undefined ? { kind: 'client' } : { kind: 'peer', mode: check.mode }
  }

  /**
   * A peer asking this node, the digest's owner, for a blob: served here, or sent to a peer already getting it
   * when the owner streams it to enough peers (OwnerFanout). Not for a peer that asks to be served here because
   * the one it was sent to failed, nor for one that does not say where it can be reached.
   */
  enterOwnedBlob (req: IncomingMessage, digest: Digest): OwnedBlobTicket | undefined {
    if (req.headers[PEER_DIRECT_HEADER] !== undefined) return undefined
    const sent = firstHeader(req.headers, PEER_HEADER) === undefined ? peerParam(req.url ?? '/') : undefined
    if (sent !== undefined) {
      // A node's client sent here (signed location): served while the fan-out has room, else sent back to its
      // node (which then gets the blob through the tree), or served here if it did not say where that is.
      const back = new URLSearchParams(sent.target.slice(sent.target.indexOf('?') + 1)).get(PEER_BACK_PARAM)
      const ticket = this.#o.ownerFanout.enterLeaf(digest)
      if (ticket !== undefined || back === null || !isHostPort(back)) return ticket
      return { redirectTo: back, leave: () => {} }
    }
    const peer = firstHeader(req.headers, PEER_FROM_HEADER)
    if (peer === undefined || !isHostPort(peer)) return undefined
    return this.#o.ownerFanout.enter(digest, peer)
  }
}
