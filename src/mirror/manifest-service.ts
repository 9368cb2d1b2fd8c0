import { createHash } from 'node:crypto'
import type { Logger } from 'pino'
import { FlotillaError } from '../errors/flotilla-error.js'
import { readLimited } from '../http/read-limited.js'
import type { RequestResult } from '../metrics/metrics.js'
import { MAX_MANIFEST_BYTES, parseDigest, parseManifest, upstreamManifestAccept, type Digest } from '../oci/index.js'
import type { ManifestBody, Upstream } from '../upstream/upstream.js'
import { UpstreamError } from '../upstream/upstream-error.js'
import type { ContentParts } from './content-parts.js'
import { ManifestCache } from './manifest-cache.js'
import { remoteFor, type ManifestResult, type MirrorRequest } from './mirror-types.js'
import { SingleFlight } from './single-flight.js'

export interface ManifestServiceOptions extends ContentParts {
  /** A bound for one shared upstream call, detached from the client that started it. */
  readonly signal: () => AbortSignal
  readonly logger: Logger
}

/** A manifest this node holds, and where containerd's images hold it (for restricted content). */
export interface LocalManifest {
  readonly bytes: Buffer
  readonly mediaType: string
  readonly knownIn?: readonly string[]
}

interface Fetched { readonly bytes: Buffer, readonly digest: Digest, readonly mediaType: string, readonly source: RequestResult }

export function digestOf (bytes: Buffer, algorithm = 'sha256'): Digest {
  return `${algorithm}:${createHash(algorithm).update(bytes).digest('hex')}` as Digest
}

/** The media type of bytes that parse as a manifest, or undefined for any other blob (a layer, a config). */
function manifestMediaType (bytes: Buffer): string | undefined {
  try {
    return parseManifest(bytes).mediaType
  } catch {
    return undefined
  }
}

export function manifestResult (digest: Digest, bytes: Buffer, source: RequestResult, mediaType: string, tag: Pick<ManifestResult, 'staleSeconds' | 'confirmedAt'> = {}): ManifestResult {
  return { digest, mediaType, size: bytes.byteLength, body: bytes, source, ...tag }
}

/** An upstream call that ended because its shared bound ran out is a timeout of that upstream, not an unknown error. */
export function boundedError (err: unknown, shared: AbortSignal, registry: string, what: string): unknown {
  if (!shared.aborted || err instanceof FlotillaError) return err
  return new UpstreamError('ERR_UPSTREAM_TIMEOUT', `${what}: no answer from ${registry} within the bound`, registry, undefined, { cause: err })
}

/** Throws ERR_REGISTRY_NOT_CONFIGURED unless the upstream of `req` is one this node pulls through. */
export function requireUpstream (upstream: Upstream, req: MirrorRequest, what: string): void {
  if (!upstream.has(req.registry)) {
    throw new FlotillaError('ERR_REGISTRY_NOT_CONFIGURED', `${what} is not held here and registry ${req.registry} is not configured for pull-through`)
  }
}

/**
 * Manifests by digest: from memory, the node's store and sources, then peers, then the upstream (one call per
 * digest however many ask), verified against the digest and validated before they are kept.
 */
export class ManifestService {
  readonly #o: ManifestServiceOptions
  readonly #cache = new ManifestCache()
  readonly #flight = new SingleFlight<Fetched>()
  /** Manifests answered and being written to the store (remember): served from here until they land. */
  readonly #writing = new Map<Digest, { readonly bytes: Buffer, readonly mediaType: string, readonly done: Promise<void> }>()

  constructor (options: ManifestServiceOptions) {
    this.#o = options
    options.store.watch((e) => { if (e.type === 'removed') this.#cache.delete(e.digest) })
  }

  /**
   * A manifest this node holds: from memory, its own store or a node source. A blob held here that is not a
   * manifest (a layer, a config) is ERR_NOT_A_MANIFEST; it is never read past the manifest size limit.
   */
  async local (req: MirrorRequest, digest: Digest): Promise<LocalManifest | undefined> {
    const cached = this.#cache.get(digest) ?? this.#writing.get(digest)
    if (cached !== undefined) return { bytes: cached.bytes, mediaType: cached.mediaType }
    const notManifest = (): FlotillaError => new FlotillaError('ERR_NOT_A_MANIFEST', `${digest} is held here but is not a manifest`)
    const own = await this.#o.store.stat(digest)
    if (own !== undefined) {
      if (own.size > MAX_MANIFEST_BYTES) throw notManifest()
      const bytes = await this.#o.store.read(digest)
      if (bytes !== undefined) {
        const mediaType = manifestMediaType(bytes)
        if (mediaType === undefined) throw notManifest()
        this.#cache.set(digest, { bytes, mediaType })
        return { bytes, mediaType }
      }
    }
    for (const src of this.#o.localSources) {
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

  async byDigest (req: MirrorRequest, digest: Digest, accept: string | undefined): Promise<ManifestResult> {
    const local = await this.local(req, digest)
    if (local !== undefined) {
      await this.#o.scope.check(req, digest, 'manifest', local.knownIn)
      return manifestResult(digest, local.bytes, 'hit', local.mediaType)
    }
    const what = `manifest ${req.registry}/${req.repository}@${digest}`
    if (req.localOnly === true) throw new FlotillaError('ERR_NOT_HELD', `${what} is not held here`)
    const fetched = await this.#flight.do(digest, async () => await this.#fetch(req, digest, accept, what))
    return manifestResult(digest, fetched.bytes, fetched.source, fetched.mediaType)
  }

  /** Validates and stores a manifest for `req` (a push: stored before it is acknowledged); invalid ones are kept by no one. */
  async keep (req: MirrorRequest, digest: Digest, bytes: Buffer, mediaType: string): Promise<void> {
    parseManifest(bytes, mediaType)
    this.#o.scope.noteFetched(req, digest)
    await this.#write(digest, bytes)
  }

  /**
   * Validates a manifest fetched for `req` and answers it from memory at once, while it is written to the store
   * in the background: its client does not wait for the store's fsync and rename (with a disk busy writing
   * back, that took a second on a node pulling with its peers). A write that fails is logged; the manifest is
   * fetched again when next asked.
   */
  remember (req: MirrorRequest, digest: Digest, bytes: Buffer, mediaType: string): void {
    parseManifest(bytes, mediaType)
    this.#o.scope.noteFetched(req, digest)
    this.#cache.set(digest, { bytes, mediaType })
    if (this.#writing.has(digest)) return
    const done = this.#write(digest, bytes).catch((err: unknown) => {
      this.#o.logger.warn({ digest, err: (err as Error).message }, 'could not keep a manifest in the store; it was answered from memory')
    }).finally(() => { this.#writing.delete(digest) })
    this.#writing.set(digest, { bytes, mediaType, done })
  }

  /** Settles once every manifest being written in the background is in the store (or failed): for shutdown. */
  async settled (): Promise<void> {
    await Promise.all([...this.#writing.values()].map(async (w) => await w.done))
  }

  async #write (digest: Digest, bytes: Buffer): Promise<void> {
    const w = await this.#o.store.begin(digest, bytes.byteLength)
    try {
      await w.write(bytes)
      await w.commit()
    } catch (err) {
      await w.abort()
      throw err
    }
  }

  /** Peers within a tight budget, then the upstream; peers again, patiently, when the upstream cannot answer. */
  async #fetch (req: MirrorRequest, digest: Digest, accept: string | undefined, what: string): Promise<Fetched> {
    const fromPeers = async (isPatient: boolean): Promise<Fetched | undefined> => {
      const remote = await remoteFor(req, this.#o.remote)?.manifest(req, { kind: 'digest', digest }, upstreamManifestAccept(accept), isPatient).catch(() => undefined)
      if (remote === undefined || digestOf(remote.bytes, parseDigest(digest).algorithm) !== digest) return undefined
      this.remember(req, digest, remote.bytes, remote.mediaType)
      return { bytes: remote.bytes, digest, mediaType: remote.mediaType, source: 'peer' }
    }
    const quick = await fromPeers(false)
    if (quick !== undefined) return quick
    requireUpstream(this.#o.upstream, req, what)
    this.#o.metrics.upstreamRequests.inc({ registry: req.registry, kind: 'manifest' })
    let m: ManifestBody
    const shared = this.#o.signal()
    try {
      m = await this.#o.upstream.getManifest(req.registry, req.repository, digest, upstreamManifestAccept(accept), shared)
    } catch (err) {
      const isUnavailable = (err instanceof FlotillaError && err.isUnavailable) || shared.aborted
      const patient = isUnavailable ? await fromPeers(true) : undefined
      if (patient !== undefined) return patient
      throw boundedError(err, shared, req.registry, what)
    }
    if (digestOf(m.bytes, parseDigest(digest).algorithm) !== digest) {
      throw new FlotillaError('ERR_DIGEST_MISMATCH', `${what}: upstream returned content that does not match the digest; nothing was kept`)
    }
    this.remember(req, digest, m.bytes, m.mediaType)
    return { bytes: m.bytes, digest, mediaType: m.mediaType, source: 'upstream' }
  }
}
