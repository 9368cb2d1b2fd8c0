import type { Logger } from 'pino'
import type { ContentSource } from '../mirror/content-source.js'
import type { BlobStore } from '../store/blob-store.js'
import type { TagIndex } from '../store/tag-index.js'
import type { Router } from './router.js'

export interface ContentAdvertiserOptions {
  readonly router: Router
  readonly store: BlobStore
  readonly tags: TagIndex
  readonly localSources: readonly ContentSource[]
  readonly logger: Logger
}

interface ListableSource extends ContentSource {
  listBlobs? (signal?: AbortSignal): AsyncIterable<{ digest: string }>
}

/**
 * Keeps the Router's advertisements in step with what this node holds: everything in the store and in the
 * node's containerd at start, then additions and removals as they happen (and downloads as they start,
 * through `announce`).
 */
export class ContentAdvertiser {
  readonly #o: ContentAdvertiserOptions
  readonly #unsubscribe: Array<() => void> = []
  readonly #controller = new AbortController()

  constructor (options: ContentAdvertiserOptions) {
    this.#o = options
  }

  announce (keys: readonly string[]): void {
    if (keys.length === 0) return
    this.#o.router.advertise(keys, this.#controller.signal).catch((err: unknown) => {
      if (!this.#controller.signal.aborted) this.#o.logger.warn({ err: (err as Error).message, keys: keys.length }, 'advertise failed')
    })
  }

  #withdraw (keys: readonly string[]): void {
    this.#o.router.withdraw(keys).catch((err: unknown) => this.#o.logger.warn({ err: (err as Error).message }, 'withdraw failed'))
  }

  /** Subscribes to changes, then advertises what is already held (in batches). */
  async start (): Promise<void> {
    const { store, tags, localSources } = this.#o
    this.#unsubscribe.push(store.watch((e) => { if (e.type === 'added') this.announce([e.digest]); else if (e.type === 'removed') this.#withdraw([e.digest]) }))
    for (const src of localSources) {
      const off = src.watch?.((e) => {
        switch (e.type) {
          case 'blob-added': this.announce([e.digest]); break
          case 'blob-removed': this.#withdraw([e.digest]); break
          case 'tag-set': this.announce([`${e.registry}/${e.repository}:${e.tag}`, ...(e.digest === undefined ? [] : [e.digest])]); break
          case 'tag-removed': this.#withdraw([`${e.registry}/${e.repository}:${e.tag}`]); break
        }
      })
      if (off !== undefined) this.#unsubscribe.push(off)
    }
    let batch: string[] = []
    const flush = (): void => {
      this.announce(batch)
      batch = []
    }
    for await (const b of store.list()) {
      batch.push(b.digest)
      if (batch.length >= 256) flush()
    }
    for await (const t of tags.entries()) batch.push(`${t.registry}/${t.repository}:${t.tag}`)
    for (const src of localSources as readonly ListableSource[]) {
      if (src.listBlobs === undefined) continue
      try {
        for await (const b of src.listBlobs(this.#controller.signal)) {
          batch.push(b.digest)
          if (batch.length >= 256) flush()
        }
      } catch (err) {
        this.#o.logger.warn({ source: src.name, err: (err as Error).message }, 'could not list content to advertise')
      }
    }
    flush()
  }

  stop (): void {
    this.#controller.abort(new Error('stopping'))
    for (const off of this.#unsubscribe) off()
  }
}
