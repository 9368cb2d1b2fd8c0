import { createHash } from 'node:crypto'
import type { Readable } from 'node:stream'
import type { Logger } from 'pino'
import type { Metrics, RequestResult } from '../metrics/metrics.js'
import {
  accepts, acceptsEveryManifestKind, DEFAULT_MANIFEST_ACCEPT, MAX_MANIFEST_BYTES, upstreamManifestAccept, OciError, parseDigest,
  parseManifest, type Digest, type ManifestRef, type Tag,
} from '../oci/index.js'
import type { BlobStore, ByteRange } from '../store/blob-store.js'
import { MemoryScopeIndex, type ScopeIndex } from '../store/scope-index.js'
import type { TagIndex, TagRecord } from '../store/tag-index.js'
import { readLimited } from '../http/read-limited.js'
import type { ManifestBody, Upstream } from '../upstream/upstream.js'
import { UpstreamError } from '../upstream/upstream-error.js'
import { BlobFetch, type BlobSourceAttempt } from './blob-fetch.js'
import type { ContentSource } from './content-source.js'
import { ManifestCache } from './manifest-cache.js'
import { upstreamToOci } from './mirror-errors.js'
import { SingleFlight } from './single-flight.js'

export interface MirrorRequest {
  readonly registry: string
  readonly repository: string
  readonly signal: AbortSignal
  /** A peer asked (loop guard): answer only from what this node holds or is downloading. */
  readonly localOnly?: boolean
  /** Do not ask peers (a peer asked us as the owner of a digest: we may go upstream, not back to peers). */
  readonly noPeers?: boolean
}

export interface ManifestResult {
  readonly digest: Digest
  readonly mediaType: string
  readonly size: number
  readonly body: Buffer
  readonly source: RequestResult
  /** Seconds since the tag was last confirmed upstream, when it was served stale because the upstream failed. */
  readonly staleSeconds?: number
}

export interface BlobResult {
  /** Total size, when known before the body (always, except for an upstream that sends no length). */
  readonly size: number | undefined
  readonly source: RequestResult
  open (range?: ByteRange): Promise<Readable>
}

/** Where else content may be found: peers (p2p) plug in here. */
export interface RemoteContent {
  /** Attempts for a blob found within a tight budget: `first` before the upstream, `last` after it. */
  blobSources (req: MirrorRequest, digest: Digest): Promise<{ first: BlobSourceAttempt[], last: BlobSourceAttempt[] }>
  /** A manifest from a peer that holds it; `isPatient` after the upstream failed (a longer lookup budget). */
  manifest (req: MirrorRequest, ref: ManifestRef, accept: string, isPatient: boolean): Promise<{ bytes: Buffer, mediaType: string } | undefined>
  /** Bytes these sources (BlobSourceAttempt origins) delivered for `digest` did not verify: stop asking them for it. */
  distrust (digest: Digest, origins: readonly string[]): void
}

export interface MirrorOptions {
  readonly store: BlobStore
  readonly tags: TagIndex
  readonly localSources?: readonly ContentSource[]
  readonly upstream: Upstream
  readonly remote?: RemoteContent
  /** Tag revalidation interval per registry; `defaultTagTtlMs` for the rest. */
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
  /**
   * Whether this node fetches from a registry with credentials: what it fetches there is restricted to the
   * repositories it is known in (ScopeIndex). Default: no registry.
   */
  readonly fetchesWithCredentials?: (registry: string) => boolean
  /** Where restricted content is known to be; in memory when omitted. */
  readonly scopes?: ScopeIndex
}

const DEFAULT_FIRST_BYTE_TIMEOUT_MS = 5000
const LATE = Symbol('late')
/** How long an upstream's "this repository does not have it" is believed, and how many such answers are kept. */
const REFUSAL_TTL_MS = 30_000
const MAX_REFUSALS = 10_000

/** The media type of bytes that parse as a manifest, or undefined for any other blob (a layer, a config). */
function manifestMediaType (bytes: Buffer): string | undefined {
  try {
    return parseManifest(bytes).mediaType
  } catch {
    return undefined
  }
}

function digestOf (bytes: Buffer, algorithm = 'sha256'): Digest {
  return `${algorithm}:${createHash(algorithm).update(bytes).digest('hex')}` as Digest
}

/**
 * The resolve engine: local store and node sources first, then peers, then the upstream; one upstream
 * fetch per digest however many ask; tags revalidated after a TTL and served stale when the upstream fails.
 */
export class Mirror {
  readonly #o: MirrorOptions
  readonly #now: () => number
  readonly #fetches = new Map<Digest, BlobFetch>()
  readonly #manifestFlight = new SingleFlight<{ bytes: Buffer, digest: Digest, mediaType: string, source: RequestResult }>()
  readonly #tagFlight = new SingleFlight<ManifestResult>()
  readonly #manifests = new ManifestCache()
  readonly #scopes: ScopeIndex
  /** `digest repository` → when the upstream's refusal to confirm it there expires. */
  readonly #refusals = new Map<string, number>()

  constructor (options: MirrorOptions) {
    this.#o = options
    this.#now = options.now ?? Date.now
    this.#scopes = options.scopes ?? new MemoryScopeIndex()
    options.store.watch((e) => { if (e.type === 'removed') this.#manifests.delete(e.digest) })
  }

  /** Downloads in progress (for status and shutdown). */
  get inflight (): readonly BlobFetch[] {
    return [...this.#fetches.values()]
  }

  // ---- manifests ----

  async getManifest (req: MirrorRequest, ref: ManifestRef, accept: string | undefined): Promise<ManifestResult> {
    const what = `manifest ${req.registry}/${req.repository}${ref.kind === 'digest' ? `@${ref.digest}` : `:${ref.tag}`}`
    if (ref.kind === 'digest') {
      return await this.#withinFirstByte(this.#manifestByDigest(req, ref.digest, accept), () => { throw this.#late(what) })
    }
    const key = `${req.registry}/${req.repository}:${ref.tag}|${req.localOnly === true ? 'local' : ''}|${accept ?? ''}`
    return await this.#withinFirstByte(this.#tagFlight.do(key, async () => await this.#manifestByTag(req, ref.tag, accept)),
      async () => await this.#lateTag(req, ref.tag, accept, what))
  }

  /**
   * `work` if it settles within the first-byte bound; else `late()` (the client must be able to fall back to its
   * next host), while `work` goes on in the background and keeps what it fetches.
   */
  async #withinFirstByte<T>(work: Promise<T>, late: () => T | Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined
    const timedOut = new Promise<typeof LATE>((resolve) => { timer = setTimeout(() => resolve(LATE), this.#o.firstByteTimeoutMs ?? DEFAULT_FIRST_BYTE_TIMEOUT_MS) })
    try {
      const first = await Promise.race([work, timedOut])
      if (first !== LATE) return first
      work.catch(() => {})
      return await late()
    } finally {
      clearTimeout(timer)
    }
  }

  #late (what: string): OciError {
    const seconds = (this.#o.firstByteTimeoutMs ?? DEFAULT_FIRST_BYTE_TIMEOUT_MS) / 1000
    return new OciError('UNAVAILABLE', `${what}: no answer from the upstream within ${seconds}s; still fetching it, try again or another host`)
  }

  /** A tag the upstream is slow to answer: the last known digest (stale-if-error), else an error to fall back on. */
  async #lateTag (req: MirrorRequest, tag: Tag, accept: string | undefined, what: string): Promise<ManifestResult> {
    const record = await this.#o.tags.get(req.registry, req.repository, tag)
    const local = record !== undefined && accepts(accept, record.mediaType) ? await this.#localManifest(req, record.digest) : undefined
    if (record === undefined || local === undefined) throw this.#late(what)
    return this.#stale(req, tag, record, local.bytes, this.#late(what))
  }

  /**
   * A manifest this node holds: from memory, its own store or a node source. A blob held here that is not a
   * manifest (a layer, a config) is MANIFEST_UNKNOWN; it is never read past the manifest size limit.
   */
  async #localManifest (req: MirrorRequest, digest: Digest): Promise<{ bytes: Buffer, mediaType: string, knownIn?: readonly string[] } | undefined> {
    const cached = this.#manifests.get(digest)
    if (cached !== undefined) return cached
    const notManifest = (): OciError => new OciError('MANIFEST_UNKNOWN', `${digest} is held here but is not a manifest`)
    const own = await this.#o.store.stat(digest)
    if (own !== undefined) {
      if (own.size > MAX_MANIFEST_BYTES) throw notManifest()
      const bytes = await this.#o.store.read(digest)
      if (bytes !== undefined) {
        const mediaType = manifestMediaType(bytes)
        if (mediaType === undefined) throw notManifest()
        this.#manifests.set(digest, { bytes, mediaType })
        return { bytes, mediaType }
      }
    }
    for (const src of this.#o.localSources ?? []) {
      const info = await src.stat(digest, req.signal).catch(() => undefined)
      if (info === undefined) continue
      if (info.size > MAX_MANIFEST_BYTES) throw notManifest()
      const stream = await src.open(digest, undefined, req.signal).catch(() => undefined)
      const bytes = stream === undefined ? undefined : await readLimited(stream, MAX_MANIFEST_BYTES).catch(() => undefined)
      if (bytes === undefined || digestOf(bytes, parseDigest(digest).algorithm) !== digest) continue
      const mediaType = manifestMediaType(bytes)
      if (mediaType === undefined) throw notManifest()
      return { bytes, mediaType, ...(info.knownIn === undefined ? {} : { knownIn: info.knownIn }) }
    }
    return undefined
  }

  #result (digest: Digest, bytes: Buffer, source: RequestResult, mediaType: string, staleSeconds?: number): ManifestResult {
    return { digest, mediaType, size: bytes.byteLength, body: bytes, source, ...(staleSeconds === undefined ? {} : { staleSeconds }) }
  }

  async #manifestByDigest (req: MirrorRequest, digest: Digest, accept: string | undefined): Promise<ManifestResult> {
    const local = await this.#localManifest(req, digest)
    if (local !== undefined) {
      await this.#mayServe(req, digest, 'manifest', local.knownIn)
      return this.#result(digest, local.bytes, 'hit', local.mediaType)
    }
    const what = `manifest ${req.registry}/${req.repository}@${digest}`
    if (req.localOnly === true) throw new OciError('MANIFEST_UNKNOWN', `${what} is not held here`)
    const fetched = await this.#manifestFlight.do(digest, async () => {
      const fromPeers = async (isPatient: boolean): Promise<{ bytes: Buffer, digest: Digest, mediaType: string, source: RequestResult } | undefined> => {
        const remote = await this.#remote(req)?.manifest(req, { kind: 'digest', digest }, upstreamManifestAccept(accept), isPatient).catch(() => undefined)
        if (remote === undefined || digestOf(remote.bytes, parseDigest(digest).algorithm) !== digest) return undefined
        await this.#keepManifest(req, digest, remote.bytes, remote.mediaType)
        return { bytes: remote.bytes, digest, mediaType: remote.mediaType, source: 'peer' }
      }
      const quick = await fromPeers(false)
      if (quick !== undefined) return quick
      this.#requireUpstream(req, what)
      this.#o.metrics.upstreamRequests.inc({ registry: req.registry, kind: 'manifest' })
      let m: ManifestBody
      const shared = this.#sharedSignal()
      try {
        m = await this.#o.upstream.getManifest(req.registry, req.repository, digest, upstreamManifestAccept(accept), shared)
      } catch (err) {
        const patient = (err instanceof UpstreamError && err.isUnavailable) || shared.aborted ? await fromPeers(true) : undefined
        if (patient !== undefined) return patient
        throw upstreamToOci(err, 'manifest', what)
      }
      if (digestOf(m.bytes, parseDigest(digest).algorithm) !== digest) {
        throw new OciError('UNAVAILABLE', `${what}: upstream returned content that does not match the digest; nothing was kept`)
      }
      await this.#keepManifest(req, digest, m.bytes, m.mediaType)
      return { bytes: m.bytes, digest, mediaType: m.mediaType, source: 'upstream' as const }
    })
    return this.#result(digest, fetched.bytes, fetched.source, fetched.mediaType)
  }

  /** Validates and stores a manifest fetched for `req`; invalid manifests are served to no one. */
  async #keepManifest (req: MirrorRequest, digest: Digest, bytes: Buffer, mediaType: string): Promise<void> {
    parseManifest(bytes, mediaType)
    this.#noteFetched(req, digest)
    const w = await this.#o.store.begin(digest, bytes.byteLength)
    try {
      await w.write(bytes)
      await w.commit()
    } catch (err) {
      await w.abort()
      throw err
    }
  }

  #remote (req: MirrorRequest): RemoteContent | undefined {
    return req.localOnly === true || req.noPeers === true ? undefined : this.#o.remote
  }

  #sharedSignal (): AbortSignal {
    return AbortSignal.timeout(this.#o.manifestTimeoutMs ?? 10_000)
  }

  #requireUpstream (req: MirrorRequest, what: string): void {
    if (!this.#o.upstream.has(req.registry)) {
      throw new OciError('NAME_UNKNOWN', `${what} is not held here and registry ${req.registry} is not configured for pull-through`)
    }
  }

  /**
   * A tag: from its record while fresh, else revalidated or fetched upstream. The record holds what a client
   * that accepts every manifest kind gets (an index for a multi-arch tag); a narrower client's answer (one
   * platform's manifest, a schema1 conversion) is served to it but never recorded, so it cannot change what
   * the tag resolves to for anyone else.
   */
  async #manifestByTag (req: MirrorRequest, tag: Tag, accept: string | undefined): Promise<ManifestResult> {
    const { registry, repository } = req
    const what = `manifest ${registry}/${repository}:${tag}`
    const record = await this.#o.tags.get(registry, repository, tag)
    const usable = record !== undefined && accepts(accept, record.mediaType) ? record : undefined
    const now = this.#now()
    if (usable !== undefined && (req.localOnly === true || now - usable.fetchedAt < this.#o.tagTtlMs(registry))) {
      const local = await this.#localManifest(req, usable.digest)
      if (local !== undefined) return this.#result(usable.digest, local.bytes, 'hit', usable.mediaType)
    }
    if (req.localOnly === true) return await this.#fromNodeSources(req, tag, accept, what)
    if (!this.#o.upstream.has(registry)) {
      return await this.#fallbackTag(req, tag, accept, usable, what,
        new OciError('NAME_UNKNOWN', `${what} is not held here and registry ${registry} is not configured for pull-through`))
    }
    const shared = this.#sharedSignal()
    const acceptUp = upstreamManifestAccept(accept)
    try {
      this.#o.metrics.upstreamRequests.inc({ registry, kind: 'manifest' })
      if (usable !== undefined) {
        // Revalidate as the record was made (every kind accepted): a HEAD tells whether the tag still points there.
        const head = await this.#o.upstream.headManifest(registry, repository, tag, DEFAULT_MANIFEST_ACCEPT, shared)
        if (head.digest === usable.digest) {
          const local = await this.#localManifest(req, usable.digest)
          if (local !== undefined) {
            await this.#o.tags.set(registry, repository, tag, { ...usable, fetchedAt: now, ...(head.etag === undefined ? {} : { etag: head.etag }) })
            return this.#result(usable.digest, local.bytes, 'hit', usable.mediaType)
          }
        }
      }
      const m = await this.#o.upstream.getManifest(registry, repository, tag, acceptUp, shared)
      const digest = digestOf(m.bytes)
      await this.#keepManifest(req, digest, m.bytes, m.mediaType)
      if (acceptsEveryManifestKind(acceptUp)) {
        await this.#o.tags.set(registry, repository, tag, {
          digest, mediaType: m.mediaType, size: m.bytes.byteLength, fetchedAt: now, ...(m.etag === undefined ? {} : { etag: m.etag }),
        })
        this.#o.announce?.([`${registry}/${repository}:${tag}`])
      }
      return this.#result(digest, m.bytes, 'upstream', m.mediaType)
    } catch (err) {
      // Unreachable, failing or too slow: the upstream cannot be asked now.
      if ((err instanceof UpstreamError && err.isUnavailable) || shared.aborted) {
        return await this.#fallbackTag(req, tag, accept, usable, what, upstreamToOci(err, 'manifest', what))
      }
      if (err instanceof UpstreamError && err.code === 'ERR_UPSTREAM_NOT_FOUND') {
        return await this.#fromNodeSources(req, tag, accept, what, upstreamToOci(err, 'manifest', what))
      }
      throw upstreamToOci(err, 'manifest', what)
    }
  }

  /** The upstream could not be asked: serve the last known digest (stale-if-error), else what the node or peers know. */
  async #fallbackTag (req: MirrorRequest, tag: Tag, accept: string | undefined, record: TagRecord | undefined, what: string, cause: OciError): Promise<ManifestResult> {
    if (record !== undefined) {
      const local = await this.#localManifest(req, record.digest)
      if (local !== undefined) return this.#stale(req, tag, record, local.bytes, cause)
    }
    return await this.#fromNodeSources(req, tag, accept, what, cause)
  }

  #stale (req: MirrorRequest, tag: Tag, record: TagRecord, bytes: Buffer, cause: OciError): ManifestResult {
    const staleSeconds = Math.max(0, Math.round((this.#now() - record.fetchedAt) / 1000))
    this.#o.metrics.staleServed.inc({ registry: req.registry })
    this.#o.metrics.staleAge.set({ registry: req.registry }, staleSeconds)
    this.#o.logger.warn({ ref: `${req.registry}/${req.repository}:${tag}`, staleSeconds, err: cause.message }, 'upstream failed; serving the last known digest')
    return this.#result(record.digest, bytes, 'stale', record.mediaType, staleSeconds)
  }

  async #fromNodeSources (req: MirrorRequest, tag: Tag, accept: string | undefined, what: string, cause?: OciError): Promise<ManifestResult> {
    for (const src of this.#o.localSources ?? []) {
      const resolved = await src.resolveTag(req.registry, req.repository, tag, req.signal).catch(() => undefined)
      if (resolved === undefined || !accepts(accept, resolved.mediaType)) continue
      const local = await this.#localManifest(req, resolved.digest).catch(() => undefined)
      if (local !== undefined) return this.#result(resolved.digest, local.bytes, 'hit', resolved.mediaType)
    }
    const peers = this.#remote(req)
    if (peers !== undefined) {
      const remote = await peers.manifest(req, { kind: 'tag', tag }, upstreamManifestAccept(accept), true).catch(() => undefined)
      if (remote !== undefined) {
        const digest = digestOf(remote.bytes)
        await this.#keepManifest(req, digest, remote.bytes, remote.mediaType).catch(() => {})
        return this.#result(digest, remote.bytes, 'peer', remote.mediaType)
      }
    }
    throw cause ?? new OciError('MANIFEST_UNKNOWN', `${what} is not held here`)
  }

  // ---- blobs ----

  async getBlob (req: MirrorRequest, digest: Digest): Promise<BlobResult> {
    const { store } = this.#o
    const own = await store.stat(digest)
    if (own !== undefined) {
      await this.#mayServe(req, digest, 'blob')
      return { size: own.size, source: 'hit', open: async (range) => await this.#openOwn(digest, range) }
    }
    for (const src of this.#o.localSources ?? []) {
      const info = await src.stat(digest, req.signal).catch(() => undefined)
      if (info === undefined) continue
      await this.#mayServe(req, digest, 'blob', info.knownIn)
      return {
        size: info.size, source: 'hit',
        open: async (range) => {
          const s = await src.open(digest, range, req.signal)
          if (s === undefined) throw new OciError('BLOB_UNKNOWN', `blob ${digest} vanished from ${src.name}`)
          return s
        },
      }
    }
    const running = this.#fetches.get(digest)
    if (running !== undefined) return await this.#joinFetch(req, running)
    const what = `blob ${req.registry}/${req.repository}@${digest}`
    if (req.localOnly === true) throw new OciError('BLOB_UNKNOWN', `${what} is not held here`)
    const remote = this.#remote(req)
    const peers = remote === undefined ? { first: [], last: [] } : await remote.blobSources(req, digest).catch(() => ({ first: [], last: [] }))
    const source: RequestResult = peers.first.length > 0 ? 'peer' : 'upstream'
    const sources: BlobSourceAttempt[] = [...peers.first]
    if (this.#o.upstream.has(req.registry)) {
      const attempts = this.#o.upstreamAttempts ?? 3
      for (let i = 0; i < attempts; i++) sources.push(this.#upstreamAttempt(req, digest))
    }
    sources.push(...peers.last)
    if (sources.length === 0) {
      throw new OciError(this.#o.upstream.has(req.registry) ? 'BLOB_UNKNOWN' : 'NAME_UNKNOWN',
        `${what} is not held here${this.#o.upstream.has(req.registry) ? '' : ` and registry ${req.registry} is not configured for pull-through`}`)
    }
    // Another request may have started the same fetch while we looked for peers.
    const again = this.#fetches.get(digest)
    if (again !== undefined) return await this.#joinFetch(req, again)
    const fetch = this.#startFetch(digest, sources)
    // Recorded as soon as the first source answers, before any other request can join this download.
    fetch.ready.then(() => this.#noteFetched(req, digest), () => {})
    try {
      return await this.#fromFetch(fetch, source)
    } catch (err) {
      throw upstreamToOci(err, 'blob', what)
    }
  }

  async #openOwn (digest: Digest, range?: ByteRange): Promise<Readable> {
    const s = await this.#o.store.open(digest, range)
    if (s === undefined) throw new OciError('BLOB_UNKNOWN', `blob ${digest} was removed while being served`)
    return s
  }

  #upstreamAttempt (req: MirrorRequest, digest: Digest): BlobSourceAttempt {
    return {
      origin: `upstream:${req.registry}`,
      open: async (offset, signal) => {
        this.#o.metrics.upstreamRequests.inc({ registry: req.registry, kind: 'blob' })
        const r = await this.#o.upstream.getBlob(req.registry, req.repository, digest, offset, signal)
        return { body: r.body, ...(r.totalSize === undefined ? {} : { totalSize: r.totalSize }) }
      },
    }
  }

  #startFetch (digest: Digest, sources: BlobSourceAttempt[]): BlobFetch {
    const { metrics } = this.#o
    const fetch = new BlobFetch({
      digest, store: this.#o.store, sources, logger: this.#o.logger,
      timeoutMs: this.#o.fetchTimeoutMs ?? 30 * 60_000,
      onBytes: (origin, n) => {
        if (origin.startsWith('upstream:')) metrics.upstreamBytes.inc({ registry: origin.slice('upstream:'.length) }, n)
      },
    })
    this.#fetches.set(digest, fetch)
    // Advertised once bytes flow (peers may stream it from us while it downloads), not for misses.
    fetch.ready.then(() => this.#o.announce?.([digest]), () => {})
    metrics.inflight.inc()
    void fetch.done.then(() => {
      this.#fetches.delete(digest)
      metrics.inflight.dec()
      // A peer with a corrupt copy must not poison every later pull of this digest.
      if ((fetch.error as { code?: string } | undefined)?.code === 'ERR_DIGEST_MISMATCH') this.#o.remote?.distrust(digest, fetch.origins)
    })
    return fetch
  }

  /** A download another request started: served once it answered, under the same rules as held content. */
  async #joinFetch (req: MirrorRequest, fetch: BlobFetch): Promise<BlobResult> {
    const what = `blob ${req.registry}/${req.repository}@${fetch.digest}`
    try {
      const result = await this.#fromFetch(fetch, 'upstream')
      await this.#mayServe(req, fetch.digest, 'blob')
      return result
    } catch (err) {
      throw upstreamToOci(err, 'blob', what)
    }
  }

  // ---- scopes of restricted content ----

  /** Content fetched for `req` from a registry we send credentials to is restricted to the repositories it is known in. */
  #noteFetched (req: MirrorRequest, digest: Digest): void {
    if (this.#o.fetchesWithCredentials?.(req.registry) !== true) return
    this.#scopes.add(digest, `${req.registry}/${req.repository}`).catch((err: unknown) => {
      this.#o.logger.warn({ digest, err: (err as Error).message }, 'could not persist where restricted content is known')
    })
  }

  /**
   * Refuses content held here under a repository it may not be read from. Unrestricted (public) content is
   * served under any repository. Content fetched with credentials (or held by containerd for a registry we
   * have credentials for) is served only where it is known to be: fetched under it, held by containerd under
   * an image of it, or confirmed by the upstream with our credentials (remembered; refusals for 30 s).
   */
  async #mayServe (req: MirrorRequest, digest: Digest, kind: 'blob' | 'manifest', knownIn: readonly string[] = []): Promise<void> {
    const where = `${req.registry}/${req.repository}`
    const known = this.#scopes.get(digest)
    const isRestricted = known !== undefined || knownIn.some((k) => this.#o.fetchesWithCredentials?.(k.slice(0, k.indexOf('/'))) === true)
    if (!isRestricted || known?.has(where) === true || knownIn.includes(where)) return
    const what = `${kind} ${where}@${digest}`
    const unknown = new OciError(kind === 'blob' ? 'BLOB_UNKNOWN' : 'MANIFEST_UNKNOWN', `${what} is not known in this repository`)
    const key = `${digest} ${where}`
    if (req.localOnly === true || !this.#o.upstream.has(req.registry) || (this.#refusals.get(key) ?? 0) > this.#now()) throw unknown
    try {
      const signal = this.#sharedSignal()
      if (kind === 'blob') await this.#o.upstream.headBlob(req.registry, req.repository, digest, signal)
      else await this.#o.upstream.headManifest(req.registry, req.repository, digest, DEFAULT_MANIFEST_ACCEPT, signal)
    } catch (err) {
      if (!(err instanceof UpstreamError) || err.isUnavailable) throw upstreamToOci(err, kind, what)
      this.#refusals.delete(key)
      this.#refusals.set(key, this.#now() + REFUSAL_TTL_MS)
      for (const oldest of this.#refusals.keys()) {
        if (this.#refusals.size <= MAX_REFUSALS) break
        this.#refusals.delete(oldest)
      }
      throw unknown
    }
    await this.#scopes.add(digest, where)
  }

  /** A download's answer once its first source answered, or an error the client can fall back on past the bound. */
  async #fromFetch (fetch: BlobFetch, source: RequestResult): Promise<BlobResult> {
    await this.#withinFirstByte(fetch.ready, () => { throw this.#late(`blob ${fetch.digest}`) })
    return { size: fetch.size, source, open: async (range) => fetch.reader(range) }
  }

  // ---- tags list ----

  async listTags (req: MirrorRequest, query: string): Promise<{ status: number, headers: Record<string, string>, body: Buffer, source: RequestResult }> {
    const what = `tags of ${req.registry}/${req.repository}`
    if (this.#o.upstream.has(req.registry) && req.localOnly !== true) {
      try {
        const r = await this.#o.upstream.passThrough(req.registry, req.repository, 'tags/list', query, undefined, req.signal)
        if (r.status === 200) return { status: 200, headers: r.headers, body: r.body, source: 'upstream' }
        if (r.status === 404) throw new UpstreamError('ERR_UPSTREAM_NOT_FOUND', 'not found', req.registry, 404)
        throw new UpstreamError('ERR_UPSTREAM_STATUS', `status ${r.status}`, req.registry, r.status)
      } catch (err) {
        if (!(err instanceof UpstreamError && err.isUnavailable)) throw upstreamToOci(err, 'tags', what)
        this.#o.logger.warn({ repo: `${req.registry}/${req.repository}`, err: err.message }, 'upstream failed; listing locally known tags')
      }
    }
    const tags = await this.#o.tags.list(req.registry, req.repository)
    if (tags.length === 0) throw new OciError('NAME_UNKNOWN', `${what}: none known here`)
    const body = Buffer.from(JSON.stringify({ name: req.repository, tags }))
    return { status: 200, headers: { 'content-type': 'application/json' }, body, source: 'hit' }
  }

  /** GET of another read path (referrers) passed to the upstream as it is. */
  async passThrough (req: MirrorRequest, path: string, query: string, accept: string | undefined): Promise<{ status: number, headers: Readonly<Record<string, string>>, body: Buffer }> {
    const what = `${path} of ${req.registry}/${req.repository}`
    if (req.localOnly === true) throw new OciError('NAME_UNKNOWN', `${what} is not held here`)
    this.#requireUpstream(req, what)
    try {
      return await this.#o.upstream.passThrough(req.registry, req.repository, path, query, accept, req.signal)
    } catch (err) {
      throw upstreamToOci(err, 'tags', what)
    }
  }

  async storeBytes (): Promise<number> {
    return await this.#o.store.totalBytes()
  }

  /** Stops every download (shutdown). */
  abortAll (reason: Error): void {
    for (const f of this.#fetches.values()) f.abort(reason)
  }
}
