import type { Digest } from '../oci/index.js'

export interface TagRecord {
  readonly digest: Digest
  readonly mediaType: string
  readonly size: number
  /** Epoch milliseconds when the tag was last confirmed against the upstream. */
  readonly fetchedAt: number
  readonly etag?: string
}

/** registry/repository:tag → manifest digest, persisted across restarts. */
export interface TagIndex {
  get (registry: string, repository: string, tag: string): Promise<TagRecord | undefined>
  set (registry: string, repository: string, tag: string, record: TagRecord): Promise<void>
  delete (registry: string, repository: string, tag: string): Promise<boolean>
  /** Tags known locally for a repository, sorted. */
  list (registry: string, repository: string): Promise<string[]>
  /** Every entry (for advertising and status). */
  entries (): AsyncIterable<{ registry: string, repository: string, tag: string, record: TagRecord }>
}
