export type P2pErrorCode =
  | 'ERR_CLUSTER_KEY_INVALID'
  | 'ERR_P2P_IDENTITY_INVALID'
  | 'ERR_PEER_INFO_INVALID'

export class P2pError extends Error {
  override readonly name = 'P2pError'
  constructor (readonly code: P2pErrorCode, message: string, options?: ErrorOptions) {
    super(message, options)
  }
}
