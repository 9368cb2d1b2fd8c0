import type { Logger } from 'pino'
import { FlotillaError } from '../errors/flotilla-error.js'
import type { Metrics } from '../metrics/metrics.js'
import { accepts, acceptsEveryManifestKind, DEFAULT_MANIFEST_ACCEPT, upstreamManifestAccept, type Tag } from '../oci/index.js'
import type { TagIndex, TagRecord } from '../store/tag-index.js'
import type { Upstream } from '../upstream/upstream.js'
import { UpstreamError } from '../upstream/upstream-error.js'
import type { ContentSource } from './content-source.js'
import { boundedError, digestOf, manifestResult, type ManifestService } from './manifest-service.js'
import { remoteFor, type ManifestResult, type MirrorRequest, type RemoteContent } from './mirror-types.js'

export interface TagServiceOptions {
  readonly tags: TagIndex
  readonly manifests: ManifestService
  readonly localSources: readonly ContentSource[]
  readonly upstream: Upstream
  readonly remote: RemoteContent | undefined
  /** Tag revalidation interval per registry. */
  readonly tagTtlMs: (registry: string) => number
  readonly metrics: Metrics
  readonly logger: Logger
  readonly now: () => number
  /** A bound for one shared upstream call, detached from the client that started it. */
  readonly signal: () => AbortSignal
  /** Told of tags this node can now serve, to advertise them. */
  readonly announce?: (keys: readonly string[]) => void
}

/**
 * What a tag resolves to: its record while fresh, else revalidated (HEAD) or fetched upstream; when the
 * upstream cannot be asked, the last known digest (stale-if-error), else what the node or peers know.
 * The record holds what a client that accepts every manifest kind gets (an index for a multi-arch tag); a
 * narrower client's answer (one platform's manifest, a schema1 conversion) is served to it but never recorded,
 * so it cannot change what the tag resolves to for anyone else.
 */
export class TagService {
  readonly #o: TagServiceOptions

  constructor (options: TagServiceOptions) {
    this.#o = options
  }

  async resolve (req: MirrorRequest, tag: Tag, accept: string | undefined): Promise<ManifestResult> {
    const { registry, repository } = req
    const { manifests, upstream } = this.#o
    const what = `manifest ${registry}/${repository}:${tag}`
    const usable = await this.#record(req, tag, accept)
    const now = this.#o.now()
    if (usable !== undefined && (req.localOnly === true || (req.revalidate !== true && now - usable.fetchedAt < this.#o.tagTtlMs(registry)))) {
      const local = await manifests.local(req, usable.digest)
      if (local !== undefined) return manifestResult(usable.digest, local.bytes, 'hit', usable.mediaType, { confirmedAt: usable.fetchedAt })
    }
    if (req.localOnly === true) return await this.#fromNodeSources(req, tag, accept, what)
    if (!upstream.has(registry)) {
      return await this.#fallback(req, tag, accept, usable, what,
        new FlotillaError('ERR_REGISTRY_NOT_CONFIGURED', `${what} is not held here and registry ${registry} is not configured for pull-through`))
    }
    const shared = this.#o.signal()
    const acceptUp = upstreamManifestAccept(accept)
    try {
      this.#o.metrics.upstreamRequests.inc({ registry, kind: 'manifest' })
      if (usable !== undefined) {
        // Revalidate as the record was made (every kind accepted): a HEAD tells whether the tag still points there.
        const head = await upstream.headManifest(registry, repository, tag, DEFAULT_MANIFEST_ACCEPT, shared)
        if (head.digest === usable.digest) {
          const local = await manifests.local(req, usable.digest)
          if (local !== undefined) {
            await this.#keep(req, tag, { ...usable, fetchedAt: now, ...(head.etag === undefined ? {} : { etag: head.etag }) })
            return manifestResult(usable.digest, local.bytes, 'hit', usable.mediaType, { confirmedAt: now })
          }
        }
      }
      const m = await upstream.getManifest(registry, repository, tag, acceptUp, shared)
      const digest = digestOf(m.bytes)
      manifests.remember(req, digest, m.bytes, m.mediaType)
      if (acceptsEveryManifestKind(acceptUp)) {
        await this.#keep(req, tag, {
          digest, mediaType: m.mediaType, size: m.bytes.byteLength, fetchedAt: now, ...(m.etag === undefined ? {} : { etag: m.etag }),
        })
        this.#o.announce?.([`${registry}/${repository}:${tag}`])
      }
      return manifestResult(digest, m.bytes, 'upstream', m.mediaType, { confirmedAt: now })
    } catch (caught) {
      const err = boundedError(caught, shared, registry, what)
      // Unreachable, failing or too slow: the upstream cannot be asked now.
      if (err instanceof FlotillaError && err.isUnavailable) return await this.#fallback(req, tag, accept, usable, what, err)
      if (err instanceof UpstreamError && err.code === 'ERR_UPSTREAM_NOT_FOUND') return await this.#fromNodeSources(req, tag, accept, what, err)
      throw err
    }
  }

  /**
   * A tag the upstream is slow to answer (or unreachable with its packets dropped): its last known digest
   * (stale), else what the node's images or its peers say it is (a bundle loaded on one node), else `late`
   * for the client to fall back on.
   */
  async late (req: MirrorRequest, tag: Tag, accept: string | undefined, late: FlotillaError): Promise<ManifestResult> {
    const record = await this.#record(req, tag, accept)
    const local = record === undefined ? undefined : await this.#o.manifests.local(req, record.digest)
    if (record !== undefined && local !== undefined) return this.#stale(req, tag, record, local.bytes, late)
    return await this.#fromNodeSources(req, tag, accept, `manifest ${req.registry}/${req.repository}:${tag}`, late)
  }

  /**
   * Records what the tag resolves to. A record that cannot be written (a full disk) is logged, not fatal: the
   * client is still answered, and the tag is resolved upstream again next time.
   */
  async #keep (req: MirrorRequest, tag: Tag, record: TagRecord): Promise<void> {
    try {
      await this.#o.tags.set(req.registry, req.repository, tag, record)
    } catch (err) {
      this.#o.logger.warn({ ref: `${req.registry}/${req.repository}:${tag}`, err: (err as Error).message }, 'could not keep the tag record; answering anyway')
    }
  }

  /** The tag's record, if this client accepts what it holds. */
  async #record (req: MirrorRequest, tag: Tag, accept: string | undefined): Promise<TagRecord | undefined> {
    const record = await this.#o.tags.get(req.registry, req.repository, tag)
    return record !== undefined && accepts(accept, record.mediaType) ? record : undefined
  }

  /** The upstream could not be asked: serve the last known digest (stale-if-error), else what the node or peers know. */
  async #fallback (req: MirrorRequest, tag: Tag, accept: string | undefined, record: TagRecord | undefined, what: string, cause: FlotillaError): Promise<ManifestResult> {
    if (record !== undefined) {
      const local = await this.#o.manifests.local(req, record.digest)
      if (local !== undefined) return this.#stale(req, tag, record, local.bytes, cause)
    }
    return await this.#fromNodeSources(req, tag, accept, what, cause)
  }

  #stale (req: MirrorRequest, tag: Tag, record: TagRecord, bytes: Buffer, cause: Error): ManifestResult {
    const staleSeconds = Math.max(0, Math.round((this.#o.now() - record.fetchedAt) / 1000))
    this.#o.metrics.staleServed.inc({ registry: req.registry })
    this.#o.metrics.staleAge.set({ registry: req.registry }, staleSeconds)
    this.#o.logger.warn({ ref: `${req.registry}/${req.repository}:${tag}`, staleSeconds, err: cause.message }, 'upstream failed; serving the last known digest')
    return manifestResult(record.digest, bytes, 'stale', record.mediaType, { staleSeconds, confirmedAt: record.fetchedAt })
  }

  async #fromNodeSources (req: MirrorRequest, tag: Tag, accept: string | undefined, what: string, cause?: FlotillaError): Promise<ManifestResult> {
    for (const src of this.#o.localSources) {
      const resolved = await src.resolveTag(req.registry, req.repository, tag, req.signal).catch(() => undefined)
      if (resolved === undefined || !accepts(accept, resolved.mediaType)) continue
      const local = await this.#o.manifests.local(req, resolved.digest).catch(() => undefined)
      if (local !== undefined) return manifestResult(resolved.digest, local.bytes, 'hit', resolved.mediaType)
    }
    const peers = remoteFor(req, this.#o.remote)
    if (peers !== undefined) {
      const remote = await peers.manifest(req, { kind: 'tag', tag }, upstreamManifestAccept(accept), true).catch(() => undefined)
      if (remote !== undefined) {
        const digest = digestOf(remote.bytes)
        try {
          this.#o.manifests.remember(req, digest, remote.bytes, remote.mediaType)
        } catch {
          // What the peer sent does not validate: the client gets it as before, but it is not kept.
        }
        return manifestResult(digest, remote.bytes, 'peer', remote.mediaType)
      }
    }
    throw cause ?? new FlotillaError('ERR_NOT_HELD', `${what} is not held here`)
  }
}
