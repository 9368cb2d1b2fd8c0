import { Readable } from 'node:stream'
import type { Digest } from '../oci/index.js'
import type { BlobInfo, BlobStore, BlobStoreEvent, BlobWriter, ByteRange } from './blob-store.js'
import { DigestVerifier } from './digest-verifier.js'

/** Blobs in memory: for unit tests and throwaway single-node runs. Same contract as FsBlobStore. */
export class MemoryBlobStore implements BlobStore {
  readonly #blobs = new Map<Digest, Buffer>()
  readonly #listeners = new Set<(e: BlobStoreEvent) => void>()

  async stat (digest: Digest): Promise<BlobInfo | undefined> {
    const b = this.#blobs.get(digest)
    return b === undefined ? undefined : { digest, size: b.byteLength }
  }

  async open (digest: Digest, range?: ByteRange): Promise<Readable | undefined> {
    const b = this.#blobs.get(digest)
    if (b === undefined) return undefined
    return Readable.from([range === undefined ? b : b.subarray(range.start, range.end + 1)], { objectMode: false })
  }

  async read (digest: Digest): Promise<Buffer | undefined> {
    return this.#blobs.get(digest)
  }

  async begin (digest: Digest, expectedSize?: number): Promise<BlobWriter> {
    const verifier = new DigestVerifier(digest, expectedSize)
    let chunks: Buffer[] | undefined = []
    const writer: BlobWriter = {
      digest,
      get written () { return verifier.size },
      write: async (chunk) => { await writer.writev([chunk]) },
      writev: async (parts) => {
        if (chunks === undefined) throw new Error('blob writer is closed')
        for (const part of parts) {
          verifier.update(part)
          chunks.push(Buffer.from(part))
        }
      },
      readBack: async (position, length) => {
        if (chunks === undefined) throw new Error('blob writer is closed')
        return Buffer.concat(chunks).subarray(position, position + length)
      },
      commit: async () => {
        if (chunks === undefined) throw new Error('blob writer is closed')
        const body = Buffer.concat(chunks)
        chunks = undefined
        verifier.verify()
        const isNew = !this.#blobs.has(digest)
        this.#blobs.set(digest, body)
        if (isNew) for (const l of this.#listeners) l({ type: 'added', digest, size: body.byteLength })
        return { digest, size: body.byteLength }
      },
      abort: async () => { chunks = undefined },
    }
    return writer
  }

  async delete (digest: Digest): Promise<boolean> {
    const b = this.#blobs.get(digest)
    if (b === undefined) return false
    this.#blobs.delete(digest)
    for (const l of this.#listeners) l({ type: 'removed', digest, size: b.byteLength })
    return true
  }

  async * list (): AsyncIterable<BlobInfo> {
    for (const [digest, b] of this.#blobs) yield { digest, size: b.byteLength }
  }

  async totalBytes (): Promise<number> {
    let n = 0
    for (const b of this.#blobs.values()) n += b.byteLength
    return n
  }

  watch (listener: (event: BlobStoreEvent) => void): () => void {
    this.#listeners.add(listener)
    return () => { this.#listeners.delete(listener) }
  }
}
