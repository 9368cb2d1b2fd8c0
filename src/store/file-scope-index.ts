import { join } from 'node:path'
import { isDigest, type Digest } from '../oci/index.js'
import { readJsonObject } from './read-json-object.js'
import { MemoryScopeIndex } from './scope-index.js'
import { writeFileDurably } from './write-file-durably.js'

/**
 * The scope index kept in memory and persisted as one JSON file (`scopes.json`), so restricted content stays
 * servable to the repositories it was fetched under across restarts, offline included. Writes are serialized.
 */
export class FileScopeIndex extends MemoryScopeIndex {
  readonly #file: string
  #pending: Promise<void> = Promise.resolve()

  private constructor (file: string) {
    super()
    this.#file = file
  }

  static async open (dir: string): Promise<FileScopeIndex> {
    const index = new FileScopeIndex(join(dir, 'scopes.json'))
    const doc = await readJsonObject(index.#file, 'scope index')
    if (doc === undefined) return index
    const scopes = doc.scopes
    if (typeof scopes !== 'object' || scopes === null || Array.isArray(scopes)) throw new Error(`scope index ${index.#file} has no "scopes" object; move it aside to start with an empty index (content fetched with credentials is then confirmed with its upstream again before it is served)`)
    for (const [digest, repositories] of Object.entries(scopes)) {
      if (!isDigest(digest) || !Array.isArray(repositories)) continue
      for (const r of repositories) if (typeof r === 'string' && r.includes('/')) index.put(digest as Digest, r)
    }
    return index
  }

  override async add (digest: Digest, repository: string): Promise<void> {
    if (this.put(digest, repository)) await this.#persist()
  }

  override async delete (digest: Digest): Promise<void> {
    if (this.scopes.delete(digest)) await this.#persist()
  }

  #persist (): Promise<void> {
    const write = async (): Promise<void> => {
      const scopes = Object.fromEntries([...this.scopes].map(([d, r]) => [d, [...r]]))
      await writeFileDurably(this.#file, JSON.stringify({ version: 1, scopes }))
    }
    this.#pending = this.#pending.then(write, write)
    return this.#pending
  }
}
