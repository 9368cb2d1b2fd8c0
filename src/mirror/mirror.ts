import type { Logger } from 'pino'
import { FlotillaError } from '../errors/flotilla-error.js'
import type { Metrics, RequestResult } from '../metrics/metrics.js'
import type { Digest, ManifestRef } from '../oci/index.js'
import type { BlobStore } from '../store/blob-store.js'
import { MemoryScopeIndex, type ScopeIndex } from '../store/scope-index.js'
import type { TagIndex } from '../store/tag-index.js'
import type { PassThroughResponse, Upstream } from '../upstream/upstream.js'
import type { BlobFetch } from './blob-fetch.js'
import { BlobService } from './blob-service.js'
import { ContentScope } from './content-scope.js'
import { LoadService } from './load-service.js'
import type { ContentSource } from './content-source.js'
import { withinBound } from './first-byte-bound.js'
import { MemoryBudget } from './memory-budget.js'
import { ManifestService } from './manifest-service.js'
import type { BlobElsewhere, BlobResult, ManifestResult, MirrorRequest, RemoteContent } from './mirror-types.js'
import { PassThrough } from './pass-through.js'
import { SingleFlight } from './single-flight.js'
import { TagService } from './tag-service.js'

export type { BlobElsewhere, BlobResult, ManifestResult, MirrorRequest, RemoteContent } from './mirror-types.js'

export interface MirrorOptions {
  readonly store: BlobStore
  readonly tags: TagIndex
  readonly localSources?: readonly ContentSource[]
  readonly upstream: Upstream
  readonly remote?: RemoteContent
  /** Tag revalidation interval per registry. */
  readonly tagTtlMs: (registry: string) => number
  readonly metrics: Metrics
  readonly logger: Logger
  readonly now?: () => number
  readonly fetchTimeoutMs?: number
  /** Attempts at the upstream for one blob (a broken stream resumes with Range). */
  readonly upstreamAttempts?: number
  /** Bounds shared manifest and tag calls upstream; they are detached from the client that started them. */
  readonly manifestTimeoutMs?: number
  /** Told of keys this node can now serve (a download started, a tag resolved), to advertise them. */
  readonly announce?: (keys: readonly string[]) => void
  /**
   * Longest a client waits for a manifest or the first byte of a blob; past it the client gets an error it can
   * fall back on (503, or the last known tag), while the shared fetch goes on in the background.
   */
  readonly firstByteTimeoutMs?: number
  /** Longest a blob stream may stop making progress before it is resumed from another source or cut. */
  readonly stallTimeoutMs?: number
  /** An upstream that has not answered a blob within this is raced against peers found later (BlobServiceOptions). */
  readonly upstreamHedgeMs?: number
  /** Bytes all running downloads together keep in memory (MemoryBudget); default: each download's own bounds only. */
  readonly downloadMemoryBytes?: number
  /**
   * Whether this node fetches from a registry with credentials: what it fetches there is restricted to the
   * repositories it is known in (ScopeIndex). Default: no registry.
   */
  readonly fetchesWithCredentials?: (registry: string) => boolean
  /** Where restricted content is known to be; in memory when omitted. */
  readonly scopes?: ScopeIndex
}

const DEFAULTS = { firstByteTimeoutMs: 5000, manifestTimeoutMs: 10_000, fetchTimeoutMs: 30 * 60_000, upstreamAttempts: 3 } as const

/**
 * The resolve engine, a small facade over its parts (as Distribution's proxy splits blob, manifest and tag
 * services): manifests by digest, tag freshness, blobs and their running downloads, pass-through reads, and
 * the scope of restricted content. Every answer is bounded by the first-byte timeout.
 */
export class Mirror {
  readonly #store: BlobStore
  readonly #firstByteTimeoutMs: number
  readonly #manifests: ManifestService
  readonly #tags: TagService
  readonly #tagFlight = new SingleFlight<ManifestResult>()
  readonly #blobs: BlobService
  /** What all downloads hold in memory, against `downloadMemoryBytes` (unbounded without it, but counted). */
  readonly #memory: MemoryBudget
  readonly #passThrough: PassThrough
  /** Content given to this node (`flotilla load`), kept as if fetched. */
  readonly load: LoadService

  constructor (o: MirrorOptions) {
    const now = o.now ?? Date.now
    const manifestTimeoutMs = o.manifestTimeoutMs ?? DEFAULTS.manifestTimeoutMs
    const signal = (): AbortSignal => AbortSignal.timeout(manifestTimeoutMs)
    const localSources = o.localSources ?? []
    this.#store = o.store
    this.#firstByteTimeoutMs = o.firstByteTimeoutMs ?? DEFAULTS.firstByteTimeoutMs
    this.#memory = new MemoryBudget(o.downloadMemoryBytes ?? Number.MAX_SAFE_INTEGER)
    const scope = new ContentScope({
      scopes: o.scopes ?? new MemoryScopeIndex(), upstream: o.upstream, fetchesWithCredentials: o.fetchesWithCredentials ?? (() => false),
      logger: o.logger, now, signal,
    })
    const common = { upstream: o.upstream, remote: o.remote, localSources, metrics: o.metrics }
    this.#manifests = new ManifestService({ ...common, store: o.store, scope, signal, logger: o.logger })
    this.#tags = new TagService({
      ...common, tags: o.tags, manifests: this.#manifests, tagTtlMs: o.tagTtlMs, logger: o.logger, now, signal,
      ...(o.announce === undefined ? {} : { announce: o.announce }),
    })
    this.#blobs = new BlobService({
      ...common, store: o.store, scope, logger: o.logger,
      fetchTimeoutMs: o.fetchTimeoutMs ?? DEFAULTS.fetchTimeoutMs, upstreamAttempts: o.upstreamAttempts ?? DEFAULTS.upstreamAttempts,
      firstByteTimeoutMs: this.#firstByteTimeoutMs,
      ...(o.stallTimeoutMs === undefined ? {} : { stallTimeoutMs: o.stallTimeoutMs }),
      ...(o.upstreamHedgeMs === undefined ? {} : { upstreamHedgeMs: o.upstreamHedgeMs }),
      memory: this.#memory,
      ...(o.announce === undefined ? {} : { announce: o.announce }),
    })
    this.#passThrough = new PassThrough({ upstream: o.upstream, tags: o.tags, logger: o.logger })
    this.load = new LoadService({
      store: o.store, tags: o.tags, manifests: this.#manifests, now,
      ...(o.announce === undefined ? {} : { announce: o.announce }),
    })
  }

  /** Bytes running downloads hold in memory now (for the metric). */
  get downloadMemoryBytes (): number { return this.#memory.held }

  /** Downloads in progress (for status and shutdown). */
  get inflight (): readonly BlobFetch[] {
    return this.#blobs.inflight
  }

  /** Whether a download of the digest is running (its blob must not be evicted under it). */
  isDownloading (digest: Digest): boolean {
    return this.#blobs.isDownloading(digest)
  }

  async getManifest (req: MirrorRequest, ref: ManifestRef, accept: string | undefined): Promise<ManifestResult> {
    const what = `manifest ${req.registry}/${req.repository}${ref.kind === 'digest' ? `@${ref.digest}` : `:${ref.tag}`}`
    if (ref.kind === 'digest') {
      return await withinBound(this.#manifests.byDigest(req, ref.digest, accept), this.#firstByteTimeoutMs, () => { throw this.#late(what) })
    }
    const key = `${req.registry}/${req.repository}:${ref.tag}|${req.localOnly === true ? 'local' : ''}|${req.revalidate === true ? 'fresh' : ''}|${accept ?? ''}`
    return await withinBound(this.#tagFlight.do(key, async () => await this.#tags.resolve(req, ref.tag, accept)), this.#firstByteTimeoutMs,
      async () => await this.#tags.late(req, ref.tag, accept, this.#late(what)))
  }

  /** A blob from here, or with `maySend` perhaps where the client can get it from a peer itself (BlobService.get). */
  async getBlob (req: MirrorRequest, digest: Digest): Promise<BlobResult>
  async getBlob (req: MirrorRequest, digest: Digest, maySend: boolean): Promise<BlobResult | BlobElsewhere>
  async getBlob (req: MirrorRequest, digest: Digest, maySend = false): Promise<BlobResult | BlobElsewhere> {
    return await this.#blobs.get(req, digest, maySend)
  }

  async listTags (req: MirrorRequest, query: string): Promise<PassThroughResponse & { source: RequestResult }> {
    return await this.#passThrough.listTags(req, query)
  }

  /** GET of another read path (referrers) passed to the upstream as it is. */
  async passThrough (req: MirrorRequest, path: string, query: string, accept: string | undefined): Promise<PassThroughResponse> {
    return await this.#passThrough.get(req, path, query, accept)
  }

  async storeBytes (): Promise<number> {
    return await this.#store.totalBytes()
  }

  /** Stops every download (shutdown). */
  abortAll (reason: Error): void {
    this.#blobs.abortAll(reason)
  }

  /** Settles once the manifests answered from memory are in the store (shutdown). */
  async settled (): Promise<void> {
    await this.#manifests.settled()
  }

  #late (what: string): FlotillaError {
    return new FlotillaError('ERR_FIRST_BYTE_TIMEOUT', `${what}: no answer from the upstream within ${this.#firstByteTimeoutMs / 1000}s; still fetching it, try again or another host`)
  }
}
