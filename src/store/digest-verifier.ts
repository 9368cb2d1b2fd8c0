import { createHash, type Hash } from 'node:crypto'
import { parseDigest, type Digest } from '../oci/index.js'
import { DigestMismatchError } from './errors.js'

/** Incremental digest check shared by the store adapters: feed bytes, then `verify` before publishing. */
export class DigestVerifier {
  readonly #hash: Hash
  readonly #algorithm: string
  #size = 0
  /** The hash once taken (verify may be asked again: before the last byte is released, and at commit). */
  #actual: string | undefined

  constructor (readonly digest: Digest, readonly expectedSize?: number) {
    this.#algorithm = parseDigest(digest).algorithm
    this.#hash = createHash(this.#algorithm)
  }

  get size (): number {
    return this.#size
  }

  update (chunk: Uint8Array): void {
    if (this.#actual !== undefined) throw new Error(`digest verifier for ${this.digest} already verified`)
    this.#size += chunk.byteLength
    if (this.expectedSize !== undefined && this.#size > this.expectedSize) {
      throw new DigestMismatchError(this.digest, 'oversize', this.expectedSize, this.#size)
    }
    this.#hash.update(chunk)
  }

  /** Throws DigestMismatchError unless the bytes seen hash to the digest (and match the expected size). */
  verify (): void {
    this.#actual ??= `${this.#algorithm}:${this.#hash.digest('hex')}`
    const actual = this.#actual
    if (actual !== this.digest || (this.expectedSize !== undefined && this.expectedSize !== this.#size)) {
      throw new DigestMismatchError(this.digest, actual, this.expectedSize, this.#size)
    }
  }
}
