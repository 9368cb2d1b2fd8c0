// Archive: the OCI layout directory as one uncompressed tar.
import { createWriteStream } from 'node:fs'
import { rename, rm } from 'node:fs/promises'
import { pipeline } from 'node:stream/promises'
import tarStream from 'tar-stream'
import { addTree, normalize, type Entry } from './entries.js'
import { writeEntry } from './write-entry.js'

/** Streams the layout directory into an uncompressed tar (what `ctr images import` takes). */
export async function writeArchive (layoutDir: string, out: string, mtime: Date): Promise<void> {
  const entries: Entry[] = []
  await addTree(entries, layoutDir, '', (rel) => rel.split('/').some((part) => part.startsWith('.')))
  const tmp = `${out}.tmp-${process.pid}`
  const pack = tarStream.pack()
  const written = pipeline(pack, createWriteStream(tmp))
  try {
    for (const entry of normalize(entries)) {
      await writeEntry(pack, entry.type === 'file' ? { ...entry, mode: 0o644 } : entry, mtime)
    }
    pack.finalize()
    await written
  } catch (err) {
    pack.destroy(err as Error)
    await written.catch(() => undefined)
    await rm(tmp, { force: true })
    throw err
  }
  await rename(tmp, out)
}
