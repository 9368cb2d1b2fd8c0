import { createHash } from 'node:crypto'
import { CID } from 'multiformats/cid'
import { create as createDigest } from 'multiformats/hashes/digest'

/** Multicodec codes (multiformats' `raw.code`, `sha256.code`), inlined to keep this module synchronous. */
const RAW_CODEC = 0x55
const SHA2_256 = 0x12

/**
 * The DHT key of a router key: CIDv1, raw codec, sha2-256 of the key's UTF-8 bytes (Spegel's mapping,
 * so `sha256:abc…` and `docker.io/library/nginx:1.27` each land on one well-known point of the DHT).
 */
export function keyToCid (key: string): CID {
  if (key.length === 0) throw new TypeError('router key must not be empty')
  const hash = createHash('sha256').update(key, 'utf8').digest()
  return CID.createV1(RAW_CODEC, createDigest(SHA2_256, new Uint8Array(hash.buffer, hash.byteOffset, hash.byteLength)))
}
