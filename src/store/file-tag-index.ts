import { randomBytes } from 'node:crypto'
import { open, readFile, rename, unlink } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { isDigest, type Digest } from '../oci/index.js'
import { isNotFound } from './fs-blob-store.js'
import { fsyncDir } from './fsync-dir.js'
import { MemoryTagIndex } from './memory-tag-index.js'
import type { TagRecord } from './tag-index.js'

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
    let text: string | undefined
    try {
      text = await readFile(index.#file, 'utf8')
    } catch (err) {
      if (!isNotFound(err)) throw err
    }
    if (text !== undefined) {
      let doc: unknown
      try {
        doc = JSON.parse(text)
      } catch {
        throw new Error(`tag index ${index.#file} is not valid JSON; move it aside to start with an empty index`)
      }
      if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) {
        throw new Error(`tag index ${index.#file} is not a JSON object; move it aside to start with an empty index`)
      }
      for (const [key, value] of Object.entries((doc as { tags?: Record<string, unknown> }).tags ?? {})) {
        const r = (value ?? {}) as Partial<TagRecord>
        if (typeof r.digest === 'string' && isDigest(r.digest) && typeof r.mediaType === 'string' && typeof r.size === 'number' && typeof r.fetchedAt === 'number') {
          index.records.set(key, { digest: r.digest as Digest, mediaType: r.mediaType, size: r.size, fetchedAt: r.fetchedAt, ...(typeof r.etag === 'string' ? { etag: r.etag } : {}) })
        }
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
      const tmp = `${this.#file}.${randomBytes(4).toString('hex')}.tmp`
      // Synced before the rename and the directory after it: a power cut leaves the old or the new index,
      // never a tags.json whose bytes were not on disk yet.
      const fh = await open(tmp, 'wx')
      try {
        await fh.writeFile(JSON.stringify({ version: 1, tags: Object.fromEntries(this.records) }))
        await fh.sync()
      } catch (err) {
        await fh.close()
        await unlink(tmp).catch(() => {})
        throw err
      }
      await fh.close()
      await rename(tmp, this.#file)
      await fsyncDir(dirname(this.#file))
    }
    this.#pending = this.#pending.then(write, write)
    return this.#pending
  }
}
