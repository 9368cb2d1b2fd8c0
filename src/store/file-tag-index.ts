import { join } from 'node:path'
import { isDigest, type Digest } from '../oci/index.js'
import { MemoryTagIndex } from './memory-tag-index.js'
import { readJsonObject } from './read-json-object.js'
import type { TagRecord } from './tag-index.js'
import { writeFileDurably } from './write-file-durably.js'

/**
 * The tag index kept in memory and persisted as one JSON file, rewritten through a synced temp file and a
 * rename so a crash or a power cut leaves the old or the new version, never a torn one. Writes are serialized.
 */
export class FileTagIndex extends MemoryTagIndex {
  readonly #file: string
  #pending: Promise<void> = Promise.resolve()

  private constructor (file: string) {
    super()
    this.#file = file
  }

  static async open (dir: string): Promise<FileTagIndex> {
    const index = new FileTagIndex(join(dir, 'tags.json'))
    const doc = await readJsonObject(index.#file, 'tag index')
    for (const [key, value] of Object.entries((doc?.tags ?? {}) as Record<string, unknown>)) {
      const r = (value ?? {}) as Partial<TagRecord>
      if (typeof r.digest === 'string' && isDigest(r.digest) && typeof r.mediaType === 'string' && typeof r.size === 'number' && typeof r.fetchedAt === 'number') {
        index.records.set(key, { digest: r.digest as Digest, mediaType: r.mediaType, size: r.size, fetchedAt: r.fetchedAt, ...(typeof r.etag === 'string' ? { etag: r.etag } : {}) })
      }
    }
    return index
  }

  override async set (registry: string, repository: string, tag: string, record: TagRecord): Promise<void> {
    await super.set(registry, repository, tag, record)
    await this.#persist()
  }

  override async delete (registry: string, repository: string, tag: string): Promise<boolean> {
    const removed = await super.delete(registry, repository, tag)
    if (removed) await this.#persist()
    return removed
  }

  #persist (): Promise<void> {
    const write = async (): Promise<void> => {
      await writeFileDurably(this.#file, JSON.stringify({ version: 1, tags: Object.fromEntries(this.records) }))
    }
    this.#pending = this.#pending.then(write, write)
    return this.#pending
  }
}
