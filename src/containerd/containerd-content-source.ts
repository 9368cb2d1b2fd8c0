import { open as openFile, type FileHandle } from 'node:fs/promises'
import { join } from 'node:path'
import { Readable, addAbortSignal } from 'node:stream'
import type { Logger } from 'pino'
import type { ContentEvent, ContentSource, ResolvedTag, SourceBlobInfo } from '../mirror/content-source.js'
import {
  OciError,
  isDigest,
  normalizeRegistry,
  normalizeRepository,
  parseDigest,
  parseImageReference,
  parseTag,
  type Digest,
} from '../oci/index.js'
import type { BlobInfo, ByteRange } from '../store/blob-store.js'
import { FileRangeStream } from '../store/file-range-stream.js'
import type { ContainerdClient, ContainerdImage, EventSubscription } from './containerd-client.js'
import { parseContainerdEvent, type ContainerdEvent } from './containerd-events.js'
import { ContainerdError } from './grpc-call.js'

export interface ContainerdContentSourceOptions {
  /**
   * containerd's API, scoped to the namespace whose images and content are served. Built and closed by the
   * caller (a role), so the source holds no connection of its own.
   */
  readonly client: ContainerdApi
  /**
   * containerd's content store directory (`<root>/io.containerd.content.v1.content`) when it is mounted:
   * blobs are then read from `blobs/<alg>/<hex>` directly instead of streamed over gRPC.
   */
  readonly contentDir?: string
  readonly logger: Logger
  /** Re-subscribe backoff after the event stream ends; defaults 100 ms doubling to 5 s. */
  readonly resubscribeBackoffMs?: { readonly initial?: number, readonly max?: number }
}

/** What the source asks of containerd (ContainerdClient is the adapter). */
export type ContainerdApi = Pick<ContainerdClient, 'namespace' | 'subscribe' | 'listImages' | 'getImage' | 'contentInfo' | 'listContent' | 'readContent'>

interface ImageRecord {
  readonly name: string
  readonly registry: string
  readonly repository: string
  readonly tag: string
  readonly digest: Digest
  readonly mediaType: string
  readonly size: number
}

/**
 * The node's containerd content store as a read-only ContentSource. Tags come from containerd's image
 * records (one per name, e.g. `docker.io/library/busybox:latest`), held in memory: loaded with ListImages
 * and kept current from the event stream; while that stream is down each lookup asks containerd directly.
 * Blob existence is containerd's per-namespace content metadata, so a blob that is on disk only for
 * another namespace is a miss. Every call has a deadline; an unreachable containerd is a fast miss.
 */
export class ContainerdContentSource implements ContentSource {
  readonly name = 'containerd'
  readonly namespace: string
  readonly #client: ContainerdApi
  readonly #logger: Logger
  readonly #contentDir: string | undefined
  readonly #backoff: { initial: number, max: number }
  /** `registry/repository:tag` → record. */
  readonly #tags = new Map<string, ImageRecord>()
  readonly #listeners = new Set<(event: ContentEvent) => void>()
  #subscription: EventSubscription | undefined
  /** Event handling and reloads run one at a time, in arrival order. */
  #queue: Promise<void> = Promise.resolve()
  /** The map mirrors containerd: the event stream is up and the last reload succeeded. */
  #isSynced = false
  /** The event stream is open (set on connect, cleared on disconnect). */
  #isStreamUp = false
  #isReachable = true
  #isClosed = false
  #reloadTimer: NodeJS.Timeout | undefined

  constructor (options: ContainerdContentSourceOptions) {
    if (options.logger === undefined) throw new TypeError('ContainerdContentSource: logger is required')
    if (options.client === undefined) throw new TypeError('ContainerdContentSource: client is required')
    this.#client = options.client
    this.namespace = options.client.namespace
    this.#contentDir = options.contentDir
    this.#logger = options.logger.child({ component: 'containerd', namespace: this.namespace })
    this.#backoff = { initial: options.resubscribeBackoffMs?.initial ?? 100, max: options.resubscribeBackoffMs?.max ?? 5000 }
  }

  /** Whether tag lookups are answered from the event-synced in-memory index. */
  get synced (): boolean {
    return this.#isSynced
  }

  /**
   * Subscribes to image and content events and loads the image list (again after every re-subscribe).
   * Resolves after the first load attempt; never rejects because containerd is down (it keeps retrying).
   */
  async start (): Promise<void> {
    if (this.#subscription !== undefined || this.#isClosed) return
    let firstAttempt: () => void = () => {}
    const attempted = new Promise<void>((resolve) => { firstAttempt = resolve })
    const ns = JSON.stringify(this.namespace)
    this.#subscription = this.#client.subscribe(
      [`namespace==${ns},topic~="^/images/"`, `namespace==${ns},topic~="^/content/"`],
      {
        onEvent: (envelope) => {
          const event = parseContainerdEvent(envelope)
          if (event !== undefined && event.namespace === this.namespace) this.#enqueue(async () => { await this.#apply(event) })
        },
        onConnect: () => {
          this.#isStreamUp = true
          this.#enqueue(async () => {
            try {
              await this.#reload()
            } finally {
              firstAttempt()
            }
          })
        },
        onDisconnect: (err) => {
          this.#isStreamUp = false
          this.#isSynced = false
          this.#markUnreachable(err)
          firstAttempt()
        },
      },
      { initialBackoffMs: this.#backoff.initial, maxBackoffMs: this.#backoff.max },
    )
    await attempted
  }

  async resolveTag (registry: string, repository: string, tag: string, signal?: AbortSignal): Promise<ResolvedTag | undefined> {
    let key: string
    try {
      const reg = normalizeRegistry(registry)
      key = `${reg}/${normalizeRepository(reg, repository)}:${parseTag(tag)}`
    } catch {
      return undefined
    }
    if (this.#isSynced) return toResolved(this.#tags.get(key))
    try {
      const image = await this.#client.getImage(key, signal)
      this.#markReachable()
      return toResolved(image === undefined ? undefined : toRecord(image))
    } catch (err) {
      return this.#miss(err, 'resolveTag', signal)
    }
  }

  async stat (digest: Digest, signal?: AbortSignal): Promise<SourceBlobInfo | undefined> {
    try {
      const info = await this.#client.contentInfo(digest, signal)
      this.#markReachable()
      return info === undefined ? undefined : { digest, size: info.size, knownIn: distributionSources(info.labels) }
    } catch (err) {
      return this.#miss(err, 'stat', signal)
    }
  }

  /**
   * Opens the blob (or an inclusive range of it; an end past the blob is clamped). The signal bounds the
   * lookup and the returned stream: aborting it destroys the stream. With `known` (a stat just made), no
   * second Info call: the content file is still checked against its size, and a vanished one is a miss.
   */
  async open (digest: Digest, range?: ByteRange, signal?: AbortSignal, known?: BlobInfo): Promise<Readable | undefined> {
    const info = known?.digest === digest ? known : await this.stat(digest, signal)
    if (info === undefined) return undefined
    let start = 0
    let end = info.size - 1
    if (info.size === 0 && range === undefined) return Readable.from([])
    if (range !== undefined) {
      if (!Number.isSafeInteger(range.start) || !Number.isSafeInteger(range.end) || range.start < 0 || range.start > range.end || range.start >= info.size) {
        throw new OciError('RANGE_INVALID', `range ${range.start}-${range.end} not satisfiable for a blob of ${info.size} bytes`)
      }
      start = range.start
      end = Math.min(range.end, info.size - 1)
    }
    const fromFile = await this.#openFile(digest, info.size, start, end, signal)
    if (fromFile !== undefined) return fromFile
    signal?.throwIfAborted()
    return this.#client.readContent(digest, { offset: start, size: end - start + 1, signal })
  }

  watch (listener: (event: ContentEvent) => void): () => void {
    this.#listeners.add(listener)
    return () => { this.#listeners.delete(listener) }
  }

  /** Every blob the namespace holds (for advertising to peers at start). */
  async * listBlobs (signal?: AbortSignal): AsyncGenerator<BlobInfo> {
    for await (const info of this.#client.listContent({ signal })) {
      if (isDigest(info.digest)) yield { digest: info.digest as Digest, size: info.size }
    }
  }

  async close (): Promise<void> {
    if (this.#isClosed) return
    this.#isClosed = true
    this.#isSynced = false
    this.#isStreamUp = false
    clearTimeout(this.#reloadTimer)
    this.#subscription?.close()
    this.#listeners.clear()
    await this.#queue
  }

  async #openFile (digest: Digest, size: number, start: number, end: number, signal?: AbortSignal): Promise<Readable | undefined> {
    if (this.#contentDir === undefined) return undefined
    const { algorithm, hex } = parseDigest(digest)
    const path = join(this.#contentDir, 'blobs', algorithm, hex)
    let handle: FileHandle | undefined
    try {
      handle = await openFile(path, 'r')
      const stats = await handle.stat()
      // A size mismatch means this is not the blob containerd described: stream it over gRPC instead.
      if (!stats.isFile() || stats.size !== size) {
        this.#logger.debug({ digest, path, size: stats.size, expected: size }, 'content file does not match content info')
        await handle.close()
        return undefined
      }
      const stream = new FileRangeStream(handle, size, start, end)
      handle = undefined
      return signal === undefined ? stream : addAbortSignal(signal, stream)
    } catch (err) {
      await handle?.close().catch(() => undefined)
      this.#logger.debug({ digest, path, err }, 'content file not readable, reading over gRPC')
      return undefined
    }
  }

  #enqueue (task: () => Promise<void>): void {
    this.#queue = this.#queue.then(task).catch((err: unknown) => {
      // The index may now be stale: answer lookups live until a reload succeeds.
      this.#isSynced = false
      if (err instanceof ContainerdError && err.isUnavailable) this.#markUnreachable(err)
      else this.#logger.warn({ err }, 'containerd event handling failed')
      this.#scheduleReload()
    })
  }

  /** Reloads after a failed event or reload while the stream stays up (a re-subscribe reloads anyway). */
  #scheduleReload (): void {
    if (this.#reloadTimer !== undefined || this.#isClosed) return
    this.#reloadTimer = setTimeout(() => {
      this.#reloadTimer = undefined
      if (!this.#isSynced && this.#isStreamUp && !this.#isClosed) this.#enqueue(async () => { await this.#reload() })
    }, this.#backoff.max)
    this.#reloadTimer.unref()
  }

  /** Replaces the index with containerd's image list and emits the differences. */
  async #reload (): Promise<void> {
    if (this.#isClosed) return
    const images = await this.#client.listImages()
    this.#markReachable()
    const next = new Map<string, ImageRecord>()
    for (const image of images) {
      const record = toRecord(image)
      if (record !== undefined) next.set(tagKey(record), record)
    }
    for (const [key, old] of this.#tags) {
      if (!next.has(key)) {
        this.#tags.delete(key)
        this.#emitTag('tag-removed', old)
      }
    }
    for (const [key, record] of next) this.#setTag(key, record)
    // Events missed while the stream is down would make the index stale: only then is it authoritative.
    this.#isSynced = this.#isStreamUp
    this.#logger.debug({ tags: this.#tags.size }, 'containerd image index loaded')
  }

  async #apply (event: ContainerdEvent): Promise<void> {
    if (this.#isClosed) return
    switch (event.kind) {
      case 'image-create':
      case 'image-update':
      case 'image-delete': {
        const key = recordKey(event.name)
        if (key === undefined) return
        // Ask for the current truth rather than trusting the event's order: a stale create never wins.
        const image = event.kind === 'image-delete' ? undefined : await this.#client.getImage(event.name)
        const record = image === undefined ? undefined : toRecord(image)
        if (record === undefined) this.#removeTag(tagKey(key))
        else this.#setTag(tagKey(key), record)
        return
      }
      case 'content-create':
        if (isDigest(event.digest)) this.#emit({ type: 'blob-added', digest: event.digest as Digest })
        return
      case 'content-delete':
        if (isDigest(event.digest)) this.#emit({ type: 'blob-removed', digest: event.digest as Digest })
    }
  }

  #setTag (key: string, record: ImageRecord): void {
    const old = this.#tags.get(key)
    this.#tags.set(key, record)
    if (old?.digest !== record.digest) this.#emitTag('tag-set', record)
  }

  #removeTag (key: string): void {
    const old = this.#tags.get(key)
    if (old === undefined) return
    this.#tags.delete(key)
    this.#emitTag('tag-removed', old)
  }

  #emitTag (type: 'tag-set' | 'tag-removed', r: ImageRecord): void {
    this.#emit({ type, registry: r.registry, repository: r.repository, tag: r.tag, digest: r.digest })
  }

  #emit (event: ContentEvent): void {
    for (const listener of this.#listeners) {
      try {
        listener(event)
      } catch (err) {
        this.#logger.warn({ err, event }, 'content event listener failed')
      }
    }
  }

  /** One line per miss, at debug while containerd is known to be away; warn is for what needs a look. */
  #miss (err: unknown, op: string, signal: AbortSignal | undefined): undefined {
    if (signal?.aborted === true) throw signal.reason
    if (!(err instanceof ContainerdError && err.isUnavailable)) this.#logger.warn({ err, op }, 'containerd call failed; answering a miss')
    else if (this.#isReachable && !this.#isClosed) this.#markUnreachable(err)
    else this.#logger.debug({ err, op }, 'containerd miss')
    return undefined
  }

  #markUnreachable (err: unknown): void {
    if (!this.#isReachable || this.#isClosed) return
    this.#isReachable = false
    this.#logger.warn({ err }, 'containerd unreachable; serving misses until it is back')
  }

  #markReachable (): void {
    if (this.#isReachable) return
    this.#isReachable = true
    this.#logger.info('containerd reachable again')
  }
}

function tagKey (r: { registry: string, repository: string, tag: string }): string {
  return `${r.registry}/${r.repository}:${r.tag}`
}

/** The registry/repository/tag an image name stands for; undefined for digest-only and ID records. */
function recordKey (name: string): { registry: string, repository: string, tag: string } | undefined {
  // CRI also names images by their config digest (`sha256:…`) and by `repo@sha256:…`: not tags.
  if (/^[a-z0-9]+:[a-f0-9]{32,}$/.test(name) || name.includes('@')) return undefined
  // Only names with an explicit tag: `busybox` alone would wrongly read as `:latest`.
  const lastSlash = name.lastIndexOf('/')
  if (name.lastIndexOf(':') <= lastSlash) return undefined
  try {
    const ref = parseImageReference(name)
    if (ref.tag === undefined || ref.digest !== undefined) return undefined
    return { registry: ref.registry, repository: ref.repository, tag: ref.tag }
  } catch {
    return undefined
  }
}

function toRecord (image: ContainerdImage): ImageRecord | undefined {
  const key = recordKey(image.name)
  if (key === undefined || !isDigest(image.target.digest)) return undefined
  return { name: image.name, ...key, digest: image.target.digest as Digest, mediaType: image.target.mediaType, size: image.target.size }
}

function toResolved (record: ImageRecord | undefined): ResolvedTag | undefined {
  return record === undefined ? undefined : { digest: record.digest, mediaType: record.mediaType, size: record.size }
}

const SOURCE_LABEL = 'containerd.io/distribution.source.'

/** `registry/repository` for each repository containerd's source labels name (`…source.docker.io=library/a,library/b`). */
export function distributionSources (labels: Readonly<Record<string, string>>): string[] {
  const out: string[] = []
  for (const [key, value] of Object.entries(labels)) {
    if (!key.startsWith(SOURCE_LABEL)) continue
    const registry = key.slice(SOURCE_LABEL.length)
    for (const repository of value.split(',')) if (repository !== '') out.push(`${registry}/${repository}`)
  }
  return out
}
