import type { Readable } from 'node:stream'
import type { Digest } from '../oci/index.js'
import type { BlobPins } from './blob-pins.js'

export interface BlobInfo {
  readonly digest: Digest
  readonly size: number
}

/** A blob as the store lists it, with when it was last served (for least-recently-served eviction). */
export interface StoredBlob extends BlobInfo {
  /** Epoch ms of the last open or read, or of the commit; seeded from the file's times when a store opens. */
  readonly lastAccess: number
  /** Its bytes are also another store's (a hard link to containerd's file): holding it costs no disk of ours. */
  readonly isShared: boolean
}

/** Inclusive byte range, as HTTP `Range: bytes=start-end` names it. */
export interface ByteRange {
  readonly start: number
  readonly end: number
}

/** What a commit did: the blob verified; `isKept` is false when the store had no room for it. */
export interface CommittedBlob extends BlobInfo {
  readonly isKept: boolean
}

/**
 * An in-progress write. Bytes go to a temporary place; `commit` makes them visible only if they hash to the digest.
 * When the store runs out of room (no space, quota, file too large), the writer stops writing and goes on
 * hashing only: the blob can still be verified for the clients streaming it, it is just not kept. What it wrote
 * before stays readable (`readBack`) until commit or abort, for readers that had fallen behind.
 */
export interface BlobWriter {
  readonly digest: Digest
  /** Bytes accepted so far. */
  readonly written: number
  /** False once the store gave up holding the bytes; commit then keeps nothing and readBack has only what came before. */
  readonly isKeeping: boolean
  write (chunk: Uint8Array): Promise<void>
  /**
   * Several chunks in order, as one write where the store can (no copy into one buffer). The bytes are taken
   * (counted and hashed) when it is called, so calls may overlap: each goes at its own offset, and `verify`
   * may run before they settle.
   */
  writev (chunks: readonly Uint8Array[]): Promise<void>
  /** Reads back bytes already written, while the writer is open (to stream a download to late joiners). */
  readBack (position: number, length: number): Promise<Buffer>
  /**
   * Checks that the bytes given to write/writev hash to the digest (and match the size when it was given),
   * stored yet or not; throws DigestMismatchError otherwise. Takes no more bytes after it; commit checks the
   * same way.
   */
  verify (): void
  /** Verifies digest (and size when it was given) and publishes atomically if kept; throws DigestMismatchError otherwise. */
  commit (): Promise<CommittedBlob>
  /** Drops the temporary bytes. Safe to call after a failed commit or twice. */
  abort (): Promise<void>
}

export interface BlobStoreEvent {
  /** 'full': a write found no room and goes on hashing only (size: bytes it had written); nothing was added. */
  readonly type: 'added' | 'removed' | 'full'
  readonly digest: Digest
  readonly size: number
}

/** Content-addressed blob storage (manifests are blobs too). */
export interface BlobStore {
  stat (digest: Digest): Promise<BlobInfo | undefined>
  /**
   * A stream of the blob or a range of it, or undefined if absent. Counts as an access. The stream keeps every
   * byte of the blob even if the blob is deleted (evicted) while it is read.
   */
  open (digest: Digest, range?: ByteRange): Promise<Readable | undefined>
  /** Whole blob into memory; for manifests (small). Counts as an access. */
  read (digest: Digest): Promise<Buffer | undefined>
  begin (digest: Digest, expectedSize?: number): Promise<BlobWriter>
  delete (digest: Digest): Promise<boolean>
  list (): AsyncIterable<StoredBlob>
  /** Digests (held or not yet) protected from eviction, each by one or more reasons. */
  readonly pins: BlobPins
  /** Total bytes held. */
  totalBytes (): Promise<number>
  /** Subscribe to additions and removals; returns an unsubscribe function. */
  watch (listener: (event: BlobStoreEvent) => void): () => void
}
