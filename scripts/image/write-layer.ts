// A layer blob: the entries streamed through tar → gzip → sha256 → disk (memory-bounded, reproducible).
import { createHash, type Hash } from 'node:crypto'
import { createWriteStream } from 'node:fs'
import { rename, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { Transform, type TransformCallback } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { createGzip } from 'node:zlib'
import tarStream from 'tar-stream'
import type { Layer } from './blob.js'
import { normalize, type Entry } from './entries.js'
import { writeEntry } from './write-entry.js'

/** Updates a hash with what flows through. */
function hashing (hash: Hash, counter?: { bytes: number }): Transform {
  return new Transform({
    transform (chunk: Buffer, _enc, callback: TransformCallback) {
      hash.update(chunk)
      if (counter !== undefined) counter.bytes += chunk.length
      callback(null, chunk)
    },
  })
}

/** Writes a gzipped tar of `entries` into the layout's blob dir, streaming. */
export async function writeLayer (blobsDir: string, name: string, entries: Entry[], mtime: Date): Promise<Layer> {
  const tmp = join(blobsDir, `.layer-${name}-${process.pid}`)
  const diffHash = createHash('sha256')
  const blobHash = createHash('sha256')
  const uncompressed = { bytes: 0 }
  const compressed = { bytes: 0 }
  const pack = tarStream.pack()
  const written = pipeline(pack, hashing(diffHash, uncompressed), createGzip({ level: 6 }), hashing(blobHash, compressed), createWriteStream(tmp))
  try {
    for (const entry of normalize(entries)) await writeEntry(pack, entry, mtime)
    pack.finalize()
    await written
  } catch (err) {
    pack.destroy(err as Error)
    await written.catch(() => undefined)
    await rm(tmp, { force: true })
    throw err
  }
  const hex = blobHash.digest('hex')
  await rename(tmp, join(blobsDir, hex))
  return { name, digest: `sha256:${hex}`, size: compressed.bytes, diffId: `sha256:${diffHash.digest('hex')}`, uncompressedSize: uncompressed.bytes }
}
