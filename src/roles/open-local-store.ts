import type { Logger } from 'pino'
import { lockDataDir } from '../store/data-dir-lock.js'
import { FileScopeIndex } from '../store/file-scope-index.js'
import { FileTagIndex } from '../store/file-tag-index.js'
import { FsBlobStore } from '../store/fs-blob-store.js'
import { LifecycleStack } from './lifecycle-stack.js'

/** The node's own content under the data directory, held by this process alone while open. */
export interface LocalStore {
  readonly store: FsBlobStore
  readonly tags: FileTagIndex
  /** Where content fetched with credentials is known to be. */
  readonly scopes: FileScopeIndex
  /** Releases the data directory. */
  close (): Promise<void>
}

export async function openLocalStore (dataDir: string, logger: Logger): Promise<LocalStore> {
  return await LifecycleStack.start(logger, async (stack) => {
    // Taken first: two processes on one data directory would corrupt each other's store.
    const lock = await lockDataDir(dataDir)
    stack.defer(lock.release)
    const store = await FsBlobStore.open(dataDir)
    const tags = await FileTagIndex.open(dataDir)
    const scopes = await FileScopeIndex.open(dataDir)
    return { store, tags, scopes, close: async () => { await stack.close() } }
  })
}
