import { FlotillaError } from '../errors/flotilla-error.js'
import type { Digest } from '../oci/index.js'
import type { BlobStore } from './blob-store.js'

/** Bytes handed to the store at once: a blob from a stream is written in batches this size, not per chunk. */
const BATCH_BYTES = 1 << 20

/**
 * Keeps a whole blob read from `body` (content given to the agent, or a save's staging cache): written in
 * vectored batches, verified against digest and size at commit (DigestMismatchError), nothing kept otherwise.
 * A store that could not keep it (a full disk) is an ERR_BLOB_FETCH, never a silent success.
 */
export async function keepBlob (store: BlobStore, digest: Digest, size: number | undefined, body: AsyncIterable<Uint8Array> | Iterable<Uint8Array>): Promise<void> {
  const writer = await store.begin(digest, size)
  try {
    let batch: Uint8Array[] = []
    let batched = 0
    for await (const chunk of body) {
      batch.push(chunk)
      batched += chunk.byteLength
      if (batched >= BATCH_BYTES) {
        await writer.writev(batch)
        batch = []
        batched = 0
      }
    }
    if (batch.length > 0) await writer.writev(batch)
    if (!writer.isKeeping) throw new FlotillaError('ERR_BLOB_FETCH', `blob ${digest} could not be kept: the disk is full`)
    await writer.commit()
  } catch (err) {
    await writer.abort()
    throw err
  }
}
