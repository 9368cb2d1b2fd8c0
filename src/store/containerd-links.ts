import { stat } from 'node:fs/promises'
import { join } from 'node:path'
import type { Logger } from 'pino'
import { parseDigest, type Digest } from '../oci/index.js'
import type { BlobInfo } from './blob-store.js'
import type { FsBlobStore } from './fs-blob-store.js'

/** What the linker asks of the agent's store (FsBlobStore is the adapter). */
export type LinkableStore = Pick<FsBlobStore, 'linkFrom' | 'isShared' | 'stat' | 'delete' | 'list' | 'watch'>

/** What the linker asks of the node's containerd (ContainerdContentSource is the adapter). */
export interface ContainerdBlobs {
  /** containerd's content metadata for the blob in the served namespace; undefined when it holds none. */
  stat (digest: Digest, signal?: AbortSignal): Promise<BlobInfo | undefined>
  /** 'blob-added' when containerd committed a blob (containerd 1.6 sends none), 'tag-set' when an image changed. */
  watch (listener: (event: { readonly type: string, readonly digest?: Digest }) => void): () => void
}

export interface ContainerdLinkerOptions {
  readonly store: LinkableStore
  readonly containerd: ContainerdBlobs
  /** containerd's content store directory (`<root>/io.containerd.content.v1.content`). */
  readonly contentDir: string
  /** The agent's data directory: compared with the content dir's filesystem at start. */
  readonly dataDir: string
  readonly logger: Logger
  /** Blobs the agent committed before containerd did are retried this often; default 5 s. */
  readonly retryMs?: number
  /** ...and for this long after the agent committed them; default 10 min. */
  readonly pendingMs?: number
  /** At most this many such blobs are remembered (oldest forgotten first); default 4096. */
  readonly maxPending?: number
  /** Without a shared filesystem, smaller blobs (manifests, configs) keep their own copy; default 1 MiB. */
  readonly dropMinBytes?: number
  /**
   * Called when one of the node's two copies went and the other stays (the store dropped its copy of a blob
   * containerd holds, or containerd deleted a blob the store still holds): peers were told it is gone.
   */
  readonly onStillHeld?: (digest: Digest) => void
  /** For tests: the hard link call. */
  readonly linkFile?: (from: string, to: string) => Promise<void>
  readonly clock?: () => number
}

const DEFAULTS = { retryMs: 5000, pendingMs: 10 * 60_000, maxPending: 4096, dropMinBytes: 1 << 20 }

type Outcome = 'done' | 'pending'

/**
 * One copy of each blob per node. When containerd has committed a blob the agent's store also holds, the
 * store's file becomes a hard link to containerd's immutable file (same filesystem), so the bytes are on disk
 * once and stay served by the agent after containerd deletes its name (`discard_unpacked_layers`). On another
 * filesystem the store drops its copy instead and the blob is served from containerd's store.
 * containerd 1.6 sends no content events: blobs the agent committed first are retried on image events and
 * on a timer until containerd holds them or they age out.
 */
export class ContainerdLinker {
  readonly #o: ContainerdLinkerOptions & typeof DEFAULTS
  readonly #logger: Logger
  readonly #clock: () => number
  /** digest → when to stop retrying. */
  readonly #pending = new Map<Digest, number>()
  readonly #unsubscribe: Array<() => void> = []
  #mode: 'link' | 'drop' = 'link'
  #queue: Promise<void> = Promise.resolve()
  #timer: NodeJS.Timeout | undefined
  #isClosed = false
  #linked = 0
  #dropped = 0

  constructor (options: ContainerdLinkerOptions) {
    for (const key of ['store', 'containerd', 'contentDir', 'dataDir', 'logger'] as const) {
      if (options[key] === undefined) throw new TypeError(`ContainerdLinker: ${key} is required`)
    }
    this.#o = { ...DEFAULTS, ...options }
    for (const key of ['retryMs', 'pendingMs', 'maxPending', 'dropMinBytes'] as const) {
      if (!Number.isFinite(this.#o[key]) || this.#o[key] < 0) throw new TypeError(`ContainerdLinker: ${key} must be a number >= 0`)
    }
    this.#logger = options.logger.child({ component: 'containerd-links' })
    this.#clock = options.clock ?? Date.now
  }

  /** 'link' while the store hard-links containerd's files, 'drop' once they proved to be on another filesystem. */
  get mode (): 'link' | 'drop' { return this.#mode }
  /** Blobs made hard links, and own copies dropped, since start. */
  get linked (): number { return this.#linked }
  get dropped (): number { return this.#dropped }

  /** Picks the mode (one log line), subscribes, then handles everything both stores already hold. */
  async start (): Promise<void> {
    this.#mode = await this.#probeMode()
    if (this.#mode === 'link') {
      this.#logger.info({ contentDir: this.#o.contentDir }, 'one copy with containerd: blobs containerd holds become hard links in the store')
    } else {
      this.#logger.info({ contentDir: this.#o.contentDir, dataDir: this.#o.dataDir },
        'one copy with containerd: its content dir is on another filesystem, so the store drops its copy of blobs containerd holds (served from containerd; gone from this node if containerd discards them)')
    }
    this.#unsubscribe.push(this.#o.store.watch((e) => {
      if (e.type === 'added') this.#enqueue(e.digest, true)
      else this.#pending.delete(e.digest)
    }))
    this.#unsubscribe.push(this.#o.containerd.watch((e) => {
      if (e.type === 'blob-added' && e.digest !== undefined) this.#enqueue(e.digest, false)
      else if (e.type === 'blob-removed' && e.digest !== undefined) this.#afterContainerdRemoved(e.digest)
      else if (e.type === 'tag-set') this.#retryPending()
    }))
    const held: Digest[] = []
    for await (const info of this.#o.store.list()) held.push(info.digest)
    for (const digest of held) this.#enqueue(digest, false)
    await this.idle()
  }

  /** Resolves once everything queued so far was handled. */
  async idle (): Promise<void> {
    let queue: Promise<void>
    do {
      queue = this.#queue
      await queue
    } while (queue !== this.#queue)
  }

  async close (): Promise<void> {
    this.#isClosed = true
    clearTimeout(this.#timer)
    for (const off of this.#unsubscribe.splice(0)) off()
    this.#pending.clear()
    await this.#queue
  }

  async #probeMode (): Promise<'link' | 'drop'> {
    try {
      const [content, data] = await Promise.all([stat(this.#o.contentDir), stat(this.#o.dataDir)])
      return content.dev === data.dev ? 'link' : 'drop'
    } catch (err) {
      // containerd creates its content dir with the first blob: until then, try links and fall back on EXDEV.
      this.#logger.debug({ err }, 'content dir not there yet; trying hard links')
      return 'link'
    }
  }

  #enqueue (digest: Digest, isNew: boolean): void {
    this.#queue = this.#queue.then(async () => {
      if (this.#isClosed) return
      let outcome: Outcome
      try {
        outcome = await this.#handle(digest)
      } catch (err) {
        // EPERM (protected hard links), EACCES…: the own copy stays, and one line says why.
        this.#logger.warn({ err, digest }, 'could not share the blob with containerd; keeping the own copy')
        outcome = 'done'
      }
      if (outcome === 'done') this.#pending.delete(digest)
      else if (isNew) this.#remember(digest)
    })
  }

  async #handle (digest: Digest): Promise<Outcome> {
    const { store } = this.#o
    const own = await store.stat(digest)
    if (own === undefined || await store.isShared(digest)) return 'done'
    if (this.#mode === 'link') {
      const { algorithm, hex } = parseDigest(digest)
      const result = await store.linkFrom(digest, join(this.#o.contentDir, 'blobs', algorithm, hex), this.#o.linkFile)
      if (result === 'linked') {
        this.#linked++
        this.#logger.debug({ digest, size: own.size }, 'blob shared with containerd')
        return 'done'
      }
      if (result === 'mismatch') return 'pending'
      this.#mode = 'drop'
      this.#logger.info({ contentDir: this.#o.contentDir, dataDir: this.#o.dataDir },
        'one copy with containerd: hard links fail across mounts (EXDEV), so the store drops its copy of blobs containerd holds instead')
    }
    if (own.size < this.#o.dropMinBytes) return 'done'
    // Only what containerd serves in our namespace may go: a file on disk alone is not served.
    const theirs = await this.#o.containerd.stat(digest)
    if (theirs?.size !== own.size) return 'pending'
    if (!await store.delete(digest)) return 'done'
    this.#dropped++
    this.#logger.debug({ digest, size: own.size }, 'own copy dropped: containerd holds the blob')
    this.#o.onStillHeld?.(digest)
    return 'done'
  }

  /** containerd discarded a blob (`discard_unpacked_layers`): the store's link still serves it. */
  #afterContainerdRemoved (digest: Digest): void {
    this.#queue = this.#queue.then(async () => {
      if (this.#isClosed || await this.#o.store.stat(digest) === undefined) return
      this.#logger.debug({ digest }, 'containerd discarded the blob; the store still holds it')
      this.#o.onStillHeld?.(digest)
    }).catch((err: unknown) => { this.#logger.warn({ err, digest }, 'could not check the store after containerd discarded a blob') })
  }

  #remember (digest: Digest): void {
    this.#pending.delete(digest)
    this.#pending.set(digest, this.#clock() + this.#o.pendingMs)
    for (const oldest of this.#pending.keys()) {
      if (this.#pending.size <= this.#o.maxPending) break
      this.#pending.delete(oldest)
    }
    this.#schedule()
  }

  #schedule (): void {
    if (this.#timer !== undefined || this.#isClosed || this.#pending.size === 0) return
    this.#timer = setTimeout(() => {
      this.#timer = undefined
      this.#retryPending()
    }, this.#o.retryMs)
    this.#timer.unref()
  }

  #retryPending (): void {
    const now = this.#clock()
    for (const [digest, until] of this.#pending) {
      if (until <= now) this.#pending.delete(digest)
      else this.#enqueue(digest, false)
    }
    this.#queue = this.#queue.then(() => { this.#schedule() })
  }
}
