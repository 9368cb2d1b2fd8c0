import { Readable } from 'node:stream'
import type { Digest } from '../oci/index.js'
import { BlobPins } from './blob-pins.js'
import type { BlobInfo, BlobStore, BlobStoreEvent, BlobWriter, ByteRange, StoredBlob } from './blob-store.js'
import { DigestVerifier } from './digest-verifier.js'

export interface MemoryBlobStoreOptions {
  /** Bytes the store may hold, counting writes in progress; past it a writer only hashes (as on a full disk). */
  readonly capacityBytes?: number
  /** Clock of the last accesses (epoch ms). */
  readonly now?: () => number
}

/** Blobs in memory: for unit tests and throwaway single-node runs. Same contract as FsBlobStore. */
export class MemoryBlobStore implements BlobStore {
  readonly #blobs = new Map<Digest, Buffer>()
  readonly #listeners = new Set<(e: BlobStoreEvent) => void>()
  readonly #capacity: number
  readonly #now: () => number
  readonly #lastAccess = new Map<Digest, number>()
  readonly pins = new BlobPins()
  /** Bytes held by blobs and by open writers. */
  #used = 0

  constructor (options: MemoryBlobStoreOptions = {}) {
    const capacity = options.capacityBytes ?? Infinity
    if (!(capacity >= 0)) throw new TypeError(`MemoryBlobStore: capacityBytes must be >= 0, got ${capacity}`)
    this.#capacity = capacity
    this.#now = options.now ?? Date.now
  }

  async stat (digest: Digest): Promise<BlobInfo | undefined> {
    const b = this.#blobs.get(digest)
    return b === undefined ? undefined : { digest, size: b.byteLength }
  }

  async open (digest: Digest, range?: ByteRange): Promise<Readable | undefined> {
    const b = this.#blobs.get(digest)
    if (b === undefined) return undefined
    this.#lastAccess.set(digest, this.#now())
    return Readable.from([range === undefined ? b : b.subarray(range.start, range.end + 1)], { objectMode: false })
  }

  async read (digest: Digest): Promise<Buffer | undefined> {
    const b = this.#blobs.get(digest)
    if (b !== undefined) this.#lastAccess.set(digest, this.#now())
    return b
  }

  async begin (digest: Digest, expectedSize?: number): Promise<BlobWriter> {
    const verifier = new DigestVerifier(digest, expectedSize)
    let chunks: Buffer[] | undefined = []
    let held = 0
    let state: 'open' | 'hashing' | 'done' = 'open'
    // Stays true through commit: false only once the store gave up holding the bytes.
    let isKeeping = true
    const release = (): void => {
      this.#used -= held
      held = 0
      chunks = undefined
    }
    const writer: BlobWriter = {
      digest,
      get written () { return verifier.size },
      get isKeeping () { return isKeeping },
      write: async (chunk) => { await writer.writev([chunk]) },
      writev: async (parts) => {
        if (state === 'done') throw new Error('blob writer is closed')
        for (const part of parts) {
          verifier.update(part)
          if (chunks === undefined || state === 'hashing') continue
          if (this.#used + part.byteLength > this.#capacity) {
            // What it holds stays readable until commit or abort (readers that fell behind).
            state = 'hashing'
            isKeeping = false
            this.#emit({ type: 'full', digest, size: verifier.size })
            continue
          }
          chunks.push(Buffer.from(part))
          held += part.byteLength
          this.#used += part.byteLength
        }
      },
      verify: () => { verifier.verify() },
      readBack: async (position, length) => {
        if (chunks === undefined) throw new Error('blob writer is closed')
        if (state === 'hashing' && position >= held && held < verifier.size) throw new Error(`blob writer keeps no bytes past ${held} (no space)`)
        return Buffer.concat(chunks).subarray(position, position + length)
      },
      commit: async () => {
        if (state === 'done') throw new Error('blob writer is closed')
        const body = chunks === undefined || state === 'hashing' ? undefined : Buffer.concat(chunks)
        state = 'done'
        try {
          verifier.verify()
        } finally {
          release()
        }
        if (body === undefined) return { digest, size: verifier.size, isKept: false }
        const previous = this.#blobs.get(digest)
        this.#used += body.byteLength - (previous?.byteLength ?? 0)
        this.#blobs.set(digest, body)
        this.#lastAccess.set(digest, this.#now())
        if (previous === undefined) this.#emit({ type: 'added', digest, size: body.byteLength })
        return { digest, size: body.byteLength, isKept: true }
      },
      abort: async () => {
        state = 'done'
        release()
      },
    }
    return writer
  }

  async delete (digest: Digest): Promise<boolean> {
    const b = this.#blobs.get(digest)
    if (b === undefined) return false
    this.#blobs.delete(digest)
    this.#lastAccess.delete(digest)
    this.#used -= b.byteLength
    this.#emit({ type: 'removed', digest, size: b.byteLength })
    return true
  }

  async * list (): AsyncIterable<StoredBlob> {
    for (const [digest, b] of this.#blobs) yield { digest, size: b.byteLength, lastAccess: this.#lastAccess.get(digest) ?? 0, isShared: false }
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

  #emit (event: BlobStoreEvent): void {
    for (const l of this.#listeners) l(event)
  }
}
