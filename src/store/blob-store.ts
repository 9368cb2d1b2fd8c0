import type { Readable } from 'node:stream'
import type { Digest } from '../oci/index.js'

export interface BlobInfo {
  readonly digest: Digest
  readonly size: number
}

/** Inclusive byte range, as HTTP `Range: bytes=start-end` names it. */
export interface ByteRange {
  readonly start: number
  readonly end: number
}

/** An in-progress write. Bytes go to a temporary place; `commit` makes them visible only if they hash to the digest. */
export interface BlobWriter {
  readonly digest: Digest
  /** Bytes accepted so far. */
  readonly written: number
  write (chunk: Uint8Array): Promise<void>
  /** Several chunks in order, as one write where the store can (no copy into one buffer). */
  writev (chunks: readonly Uint8Array[]): Promise<void>
  /** Reads back bytes already written, while the writer is open (to stream a download to late joiners). */
  readBack (position: number, length: number): Promise<Buffer>
  /** Verifies digest (and size when it was given) and publishes atomically; throws DigestMismatchError otherwise. */
  commit (): Promise<BlobInfo>
  /** Drops the temporary bytes. Safe to call after a failed commit or twice. */
  abort (): Promise<void>
}

export interface BlobStoreEvent {
  readonly type: 'added' | 'removed'
  readonly digest: Digest
  readonly size: number
}

/** Content-addressed blob storage (manifests are blobs too). */
export interface BlobStore {
  stat (digest: Digest): Promise<BlobInfo | undefined>
  /** A stream of the blob or a range of it, or undefined if absent. */
  open (digest: Digest, range?: ByteRange): Promise<Readable | undefined>
  /** Whole blob into memory; for manifests (small). */
  read (digest: Digest): Promise<Buffer | undefined>
  begin (digest: Digest, expectedSize?: number): Promise<BlobWriter>
  delete (digest: Digest): Promise<boolean>
  list (): AsyncIterable<BlobInfo>
  /** Total bytes held. */
  totalBytes (): Promise<number>
  /** Subscribe to additions and removals; returns an unsubscribe function. */
  watch (listener: (event: BlobStoreEvent) => void): () => void
}
