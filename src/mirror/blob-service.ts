import type { Readable } from 'node:stream'
import type { Logger } from 'pino'
import type { MemoryBudget } from './memory-budget.js'
import { FlotillaError, hasCode } from '../errors/flotilla-error.js'
import type { RequestResult } from '../metrics/metrics.js'
import type { Digest } from '../oci/index.js'
import type { ByteRange } from '../store/blob-store.js'
import { BlobFetch } from './blob-fetch.js'
import type { BlobSourceAttempt } from './blob-source.js'
import type { ContentParts } from './content-parts.js'
import { withinBound } from './first-byte-bound.js'
import { hedge } from './hedge.js'
import { remoteFor, type BlobElsewhere, type BlobResult, type MirrorRequest } from './mirror-types.js'

export interface BlobServiceOptions extends ContentParts {
  readonly logger: Logger
  /** Bounds a whole download, detached from any client. */
  readonly fetchTimeoutMs: number
  /** Attempts at the upstream for one blob (a broken stream resumes with Range). */
  readonly upstreamAttempts: number
  readonly stallTimeoutMs?: number
  /** Longest a client waits for a download's first byte before it gets an error it can fall back on. */
  readonly firstByteTimeoutMs: number
  /**
   * An upstream that has not answered within this is raced against the patient peer lookup (default 1 s): an
   * upstream whose packets are dropped holds its first attempt for the whole connect timeout, past the client's
   * first-byte bound, while a peer may hold the blob (one that loaded a bundle, or announced it late).
   */
  readonly upstreamHedgeMs?: number
  /** Told of digests this node can now serve (a download started), to advertise them. */
  readonly announce?: (keys: readonly string[]) => void
  /** The process's bound on bytes downloads hold in memory, shared by every download. */
  readonly memory?: MemoryBudget
}

/**
 * Blobs: the node's store and sources first, then one download per digest (peers, then the upstream) shared by
 * every client that wants it while it runs: the registry of running downloads lives here and only here.
 */
export class BlobService {
  readonly #o: BlobServiceOptions
  readonly #fetches = new Map<Digest, BlobFetch>()

  constructor (options: BlobServiceOptions) {
    this.#o = options
  }

  /** Downloads in progress (for status and shutdown). */
  get inflight (): readonly BlobFetch[] {
    return [...this.#fetches.values()]
  }

  isDownloading (digest: Digest): boolean {
    return this.#fetches.has(digest)
  }

  /**
   * A blob from here: held, being downloaded, or a download started now. `maySend`: a client that can get it
   * from a peer itself is sent there (BlobElsewhere) when nothing here has it and a peer holds it.
   */
  async get (req: MirrorRequest, digest: Digest): Promise<BlobResult>
  async get (req: MirrorRequest, digest: Digest, maySend: boolean): Promise<BlobResult | BlobElsewhere>
  async get (req: MirrorRequest, digest: Digest, maySend = false): Promise<BlobResult | BlobElsewhere> {
    const { store, scope } = this.#o
    const own = await store.stat(digest)
    if (own !== undefined) {
      await scope.check(req, digest, 'blob')
      return { size: own.size, source: 'hit', open: async (range) => await this.#openOwn(digest, range) }
    }
    for (const src of this.#o.localSources) {
      const info = await src.stat(digest, req.signal).catch(() => undefined)
      if (info === undefined) continue
      await scope.check(req, digest, 'blob', info.knownIn)
      return {
        size: info.size, source: 'hit',
        open: async (range) => {
          const s = await src.open(digest, range, req.signal, info)
          if (s === undefined) throw new FlotillaError('ERR_NOT_HELD', `blob ${digest} vanished from ${src.name}`)
          return s
        },
      }
    }
    const running = this.#fetches.get(digest)
    if (running !== undefined) return await this.#join(req, running)
    if (req.localOnly === true) throw new FlotillaError('ERR_NOT_HELD', `blob ${req.registry}/${req.repository}@${digest} is not held here`)
    // Restricted content (a registry fetched with credentials) is never sent elsewhere: it comes through here.
    const found = await this.#sources(req, digest, maySend && !scope.isRestricted(req.registry))
    // Another request may have started the same fetch while we looked for peers.
    const again = this.#fetches.get(digest)
    if (again !== undefined) return await this.#join(req, again)
    if (found.sendTo !== undefined) return { sendTo: found.sendTo }
    const fetch = this.#start(digest, found.attempts)
    this.#fetches.set(digest, fetch)
    // Recorded as soon as the first source answers, before any other request can join this download.
    fetch.ready.then(() => this.#o.scope.noteFetched(req, digest), () => {})
    return await this.#answer(req, fetch)
  }

  /**
   * Peers found within a tight budget, then the upstream (several attempts, for resuming), then peers found
   * later; or `sendTo` (and no attempts) when `maySend` and a peer holds the blob (RemoteContent.blobSources).
   */
  async #sources (req: MirrorRequest, digest: Digest, maySend = false): Promise<{ attempts: BlobSourceAttempt[], sendTo?: string }> {
    const what = `blob ${req.registry}/${req.repository}@${digest}`
    const remote = remoteFor(req, this.#o.remote)
    const peers = remote === undefined ? { first: [], last: [] } : await remote.blobSources(req, digest, maySend).catch(() => ({ first: [], last: [] }))
    if (peers.sendTo !== undefined) return { attempts: [], sendTo: peers.sendTo }
    const isConfigured = this.#o.upstream.has(req.registry)
    const upstream = isConfigured ? Array.from({ length: this.#o.upstreamAttempts }, () => this.#upstreamAttempt(req, digest)) : []
    const [first, later] = [upstream[0], peers.last[0]]
    if (first !== undefined && later !== undefined) upstream[0] = hedge(first, later, this.#o.upstreamHedgeMs ?? 1000, first.origin)
    const sources: BlobSourceAttempt[] = [...peers.first, ...upstream, ...peers.last]
    if (sources.length === 0) {
      throw isConfigured
        ? new FlotillaError('ERR_NOT_HELD', `${what} is not held here`)
        : new FlotillaError('ERR_REGISTRY_NOT_CONFIGURED', `${what} is not held here and registry ${req.registry} is not configured for pull-through`)
    }
    return { attempts: sources }
  }

  /** Stops every download (shutdown). */
  abortAll (reason: Error): void {
    for (const f of this.#fetches.values()) f.abort(reason)
  }

  async #openOwn (digest: Digest, range?: ByteRange): Promise<Readable> {
    const s = await this.#o.store.open(digest, range)
    if (s === undefined) throw new FlotillaError('ERR_NOT_HELD', `blob ${digest} was removed while being served`)
    return s
  }

  #upstreamAttempt (req: MirrorRequest, digest: Digest): BlobSourceAttempt {
    return {
      origin: { kind: 'upstream', registry: req.registry },
      open: async (offset, signal) => {
        this.#o.metrics.upstreamRequests.inc({ registry: req.registry, kind: 'blob' })
        const r = await this.#o.upstream.getBlob(req.registry, req.repository, digest, offset, signal)
        return { body: r.body, ...(r.totalSize === undefined ? {} : { totalSize: r.totalSize }) }
      },
    }
  }

  #start (digest: Digest, sources: BlobSourceAttempt[]): BlobFetch {
    const { metrics } = this.#o
    const fetch = new BlobFetch({
      digest, store: this.#o.store, sources, logger: this.#o.logger, timeoutMs: this.#o.fetchTimeoutMs,
      ...(this.#o.stallTimeoutMs === undefined ? {} : { stallTimeoutMs: this.#o.stallTimeoutMs }),
      ...(this.#o.memory === undefined ? {} : { memory: this.#o.memory }),
      onBytes: (origin, n) => {
        if (origin.kind === 'upstream') metrics.upstreamBytes.inc({ registry: origin.registry }, n)
      },
    })
    // Advertised once bytes flow (peers may stream it from us while it downloads), not for misses.
    fetch.ready.then(() => this.#o.announce?.([digest]), () => {})
    metrics.inflight.inc()
    void fetch.done.then(() => {
      if (this.#fetches.get(digest) === fetch) this.#fetches.delete(digest)
      metrics.inflight.dec()
      // A peer with a corrupt copy must not poison every later pull of this digest.
      if (hasCode(fetch.error, 'ERR_DIGEST_MISMATCH')) this.#o.remote?.distrust(digest, fetch.origins)
    })
    return fetch
  }

  /** A download another request started: served once it answered, under the same rules as held content. */
  async #join (req: MirrorRequest, fetch: BlobFetch): Promise<BlobResult> {
    const result = await this.#answer(req, fetch)
    await this.#o.scope.check(req, fetch.digest, 'blob')
    return result
  }

  /** A download's answer once its first source answered, or an error the client can fall back on past the bound. */
  /** Its client is counted as served by the download's real source (a peer or the upstream), joiners too. */
  async #answer (req: MirrorRequest, fetch: BlobFetch): Promise<BlobResult> {
    const late = (): never => {
      throw new FlotillaError('ERR_FIRST_BYTE_TIMEOUT', `blob ${fetch.digest}: no first byte within ${this.#o.firstByteTimeoutMs / 1000}s; still fetching it, try again or another host`)
    }
    try {
      await withinBound(fetch.ready, this.#o.firstByteTimeoutMs, late)
    } catch (err) {
      // Sources fail in their own ways; the client hears that the download failed, with the reason.
      if (err instanceof FlotillaError) throw err
      throw new FlotillaError('ERR_BLOB_FETCH', `blob ${fetch.digest}: ${(err as Error).message}`, { cause: err })
    }
    const source: RequestResult = fetch.answeredBy?.kind === 'upstream' ? 'upstream' : 'peer'
    return { size: fetch.size, source, open: async (range) => fetch.canServe(range) ? fetch.reader(range) : await this.#alone(req, fetch.digest, range) }
  }

  /**
   * A download of its own for a client that joined a download the store has no room for, after the bytes it
   * needs left memory. Not shared (the shared one goes on for its readers), bounded like any other.
   */
  async #alone (req: MirrorRequest, digest: Digest, range?: ByteRange): Promise<Readable> {
    const fetch = this.#start(digest, (await this.#sources(req, digest)).attempts)
    await this.#answer(req, fetch)
    return fetch.reader(range)
  }
}
