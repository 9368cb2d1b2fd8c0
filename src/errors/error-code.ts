/**
 * Every stable error code flotilla throws, by area. A code names what went wrong, never how it is reported:
 * the HTTP edge alone turns codes into OCI errors, the CLI into exit codes.
 */
export type UpstreamErrorCode =
  | 'ERR_UPSTREAM_NOT_FOUND'
  | 'ERR_UPSTREAM_UNAUTHORIZED'
  | 'ERR_UPSTREAM_DENIED'
  | 'ERR_UPSTREAM_STATUS'
  | 'ERR_UPSTREAM_UNAVAILABLE'
  | 'ERR_UPSTREAM_TIMEOUT'
  | 'ERR_UPSTREAM_CIRCUIT_OPEN'
  | 'ERR_UPSTREAM_TOO_MANY_REQUESTS'
  | 'ERR_UPSTREAM_UNKNOWN_REGISTRY'
  | 'ERR_UPSTREAM_INVALID_RESPONSE'

export type ContentErrorCode =
  /** Not held here, and nowhere to get it from (a peer asked us, or the registry is not configured). */
  | 'ERR_NOT_HELD'
  /** Held here, but not a manifest (a layer, a config asked for as a manifest). */
  | 'ERR_NOT_A_MANIFEST'
  /** Restricted content asked for under a repository it is not known in. */
  | 'ERR_NOT_IN_SCOPE'
  /** The registry is not one this node pulls through. */
  | 'ERR_REGISTRY_NOT_CONFIGURED'
  /** No answer within the first-byte bound; the fetch goes on in the background. */
  | 'ERR_FIRST_BYTE_TIMEOUT'
  /** Bytes did not hash to their digest (or size); nothing was kept. */
  | 'ERR_DIGEST_MISMATCH'
  /** A download failed: every source broke off, timed out or was aborted. */
  | 'ERR_BLOB_FETCH'
  /** A source or a reader of a download made no progress within its bound. */
  | 'ERR_BLOB_STALLED'
  /** Nothing of the download is kept on disk and the bytes a reader needs have left memory. */
  | 'ERR_BLOB_WINDOW_PASSED'
  | 'ERR_PEER_UNAVAILABLE'
  /** The digest's owner asked its upstream and got a 404. */
  | 'ERR_PEER_NOT_FOUND'

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

export type KubeErrorCode =
  /** The Kubernetes API could not be asked or gave no usable answer (token, TLS, HTTP status, JSON, timeout). */
  | 'ERR_KUBE_API'
  /** A name sent to the Kubernetes API, or a label it returned, is not a valid Kubernetes name or label value. */
  | 'ERR_KUBE_INVALID'

export type ContainerdErrorCode =
  | 'ERR_CONTAINERD_UNAVAILABLE'
  | 'ERR_CONTAINERD_TIMEOUT'
  | 'ERR_CONTAINERD_NOT_FOUND'
  | 'ERR_CONTAINERD_CANCELLED'
  | 'ERR_CONTAINERD_CALL'
  | 'ERR_HOSTS_TOML_INVALID'
  | 'ERR_HOSTS_OPTION_INVALID'

export type SetupErrorCode =
  | 'ERR_CONFIG'
  | 'ERR_DOCKER_CONFIG_INVALID'
  | 'ERR_DATA_DIR_LOCKED'
  | 'ERR_CLI_OPTION_INVALID'

export type BundleErrorCode =
  /** Not a bundle: not a tar, truncated, or a malformed index.json, oci-layout or flotilla-bundle.json. */
  | 'ERR_BUNDLE_INVALID'
  /** A blob's bytes do not match its digest or its declared size. */
  | 'ERR_BUNDLE_DIGEST'
  /** An image lacks content it needs (a manifest, config or layer). */
  | 'ERR_BUNDLE_INCOMPLETE'
  /** The bundle file (or the zstd process) could not be read or written. */
  | 'ERR_BUNDLE_IO'

export type ErrorCode = UpstreamErrorCode | ContentErrorCode | P2pErrorCode | KubeErrorCode | ContainerdErrorCode | SetupErrorCode | BundleErrorCode
