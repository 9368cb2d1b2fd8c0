export type P2pErrorCode =
  | 'ERR_CLUSTER_KEY_INVALID'
  | 'ERR_P2P_IDENTITY_INVALID'
  | 'ERR_PEER_INFO_INVALID'
  /** A peer's holdings list (keys it announces) is malformed or too long. */
  | 'ERR_PEER_HOLDINGS_INVALID'
  /** The node's zone could not be read from the Kubernetes API (token, TLS, HTTP status, JSON, timeout). */
  | 'ERR_NODE_ZONE'
  /** The node name, or the zone label on the node, is not a valid Kubernetes name or label value. */
  | 'ERR_NODE_ZONE_INVALID'

export class P2pError extends Error {
  override readonly name = 'P2pError'
  constructor (readonly code: P2pErrorCode, message: string, options?: ErrorOptions) {
    super(message, options)
  }
}
