import { request, type Dispatcher } from 'undici'
import type { Readable } from 'node:stream'
import type { Logger } from 'pino'
import { FlotillaError } from '../errors/flotilla-error.js'
import type { BlobSourceAttempt } from '../mirror/blob-source.js'
import type { MirrorRequest, RemoteContent } from '../mirror/mirror.js'
import type { SourceOrigin } from '../mirror/blob-source.js'
import { hedge } from '../mirror/hedge.js'
import type { Digest, ManifestRef } from '../oci/index.js'
import { MAX_MANIFEST_BYTES } from '../oci/index.js'
import { parseContentRange } from '../http/content-range.js'
import { discardBody } from '../http/discard-body.js'
import { firstHeader } from '../http/first-header.js'
import { readLimited } from '../http/read-limited.js'
import { PEER_DIRECT_HEADER, PEER_FROM_HEADER, PEER_HEADER, signedLocation, type PeerMode } from './peer-auth.js'
import type { PeerCredentials } from './peer-credentials.js'
import { rendezvousOwner } from './rendezvous.js'
import { isHostPort, type PeerInfo, type Router } from './router.js'

export interface PeerContentOptions {
  readonly router: Router
  /**
   * Connections to peers (an undici Agent, see PEER_DISPATCHER_DEFAULTS): its timeouts bound each peer
   * request. Built and closed by the caller.
   */
  readonly dispatcher: Dispatcher
  /** Signs each request to a peer (see peerToken). */
  readonly credentials: PeerCredentials
  readonly zone?: string
  readonly logger: Logger
  /** Budget for finding providers of a key; past it the agent goes on without peers. */
  readonly findBudgetMs?: number
  /** A holder that has not answered within this is raced against the next one. */
  readonly hedgeAfterMs?: number
  /** Budget of the second, patient lookup made once the upstream failed. */
  readonly fallbackFindMs?: number
  /** Providers asked for at most (default 8); they are tried in random order, same zone first. */
  readonly maxProviders?: number
  /** Whether digests are routed through their rendezvous owner when no peer holds them (cluster-wide coalescing). */
  readonly isOwnerRouting?: boolean
}

/** A peer could not be asked (`ERR_PEER_UNAVAILABLE`), or the owner asked its upstream and got a 404 (`ERR_PEER_NOT_FOUND`, final). */
export class PeerFetchError extends FlotillaError<'ERR_PEER_UNAVAILABLE' | 'ERR_PEER_NOT_FOUND'> {
  override readonly name = 'PeerFetchError'
  constructor (message: string, code: 'ERR_PEER_UNAVAILABLE' | 'ERR_PEER_NOT_FOUND' = 'ERR_PEER_UNAVAILABLE', options?: ErrorOptions) {
    super(code, message, options)
  }
}

/**
 * The peer connection pool PeerContent expects: a short connect (a peer is near or not there at all), while
 * headers from a peer that owns a digest may wait on its own upstream fetch.
 */
export const PEER_DISPATCHER_DEFAULTS = {
  connect: { timeout: 1000 },
  headersTimeout: 30_000,
  bodyTimeout: 30_000,
  connections: 16,
} as const

/** How long a peer that sent bytes of a digest that did not verify is not asked for that digest again. */
const DISTRUST_MS = 10 * 60_000
/** The patient lookup goes ahead this long after the first provider answered, not at the end of the DHT walk. */
const SETTLE_MS = 25
const MAX_REMEMBERED = 10_000
/**
 * After a client was sent to a holder for a digest, its requests for that digest are served here for this long:
 * a client asks again only when the holder failed it (containerd resumes a broken body with Range, or its
 * pull is retried), so the retry must not go back to the same place.
 */
const SENT_ONCE_MS = 60_000

/** Content on other agents: providers found through the Router, fetched over their registry API. */
export class PeerContent implements RemoteContent {
  readonly #o: PeerContentOptions
  /** `digest httpAddress` → until when that peer is not asked for that digest. */
  readonly #distrusted = new Map<string, number>()
  /** digest → until when this node's clients are not sent to a holder for it again. */
  readonly #sent = new Map<string, number>()

  constructor (options: PeerContentOptions) {
    if (options.dispatcher === undefined) throw new TypeError('PeerContent: dispatcher is required')
    this.#o = options
  }

  /**
   * Providers of a key within the budget, same zone first, otherwise in random order: when many nodes pull
   * one blob, later ones spread over the peers already streaming it instead of all asking the first holder.
   */
  async providers (key: string, signal: AbortSignal): Promise<PeerInfo[]> {
    return await this.#providersWithin(key, signal, this.#o.findBudgetMs ?? 5)
  }

  distrust (digest: Digest, origins: readonly SourceOrigin[]): void {
    const until = Date.now() + DISTRUST_MS
    for (const origin of origins) {
      if (origin.kind !== 'peer') continue
      this.#o.logger.warn({ digest, peer: origin.address }, `peer sent bytes that do not hash to the digest; not asking it for this digest for ${DISTRUST_MS / 60_000} min`)
      this.#distrusted.delete(`${digest} ${origin.address}`)
      this.#distrusted.set(`${digest} ${origin.address}`, until)
    }
    for (const [key, expires] of this.#distrusted) {
      if (this.#distrusted.size <= MAX_REMEMBERED && expires > Date.now()) break
      this.#distrusted.delete(key)
    }
  }

  #isTrusted (digest: Digest, peer: PeerInfo): boolean {
    const until = this.#distrusted.get(`${digest} ${peer.httpAddress}`)
    if (until === undefined) return true
    if (until > Date.now()) return false
    this.#distrusted.delete(`${digest} ${peer.httpAddress}`)
    return true
  }

  /**
   * `settleMs`: once a provider is found, wait at most this much longer for others (the patient lookup: a walk
   * of the DHT may go on well after the holder answered, and a client waits on it).
   */
  async #providersWithin (key: string, signal: AbortSignal, budgetMs: number, settleMs = Infinity): Promise<PeerInfo[]> {
    const found: PeerInfo[] = []
    const limit = this.#o.maxProviders ?? 8
    const budget = AbortSignal.any([signal, AbortSignal.timeout(budgetMs)])
    // The budget is kept strictly: a lookup still walking the DHT is left to wind down on its own.
    await new Promise<void>((resolve) => {
      let timer = setTimeout(resolve, budgetMs)
      const walk = async (): Promise<void> => {
        try {
          for await (const p of this.#o.router.findProviders(key, { signal: budget, limit })) {
            found.push(p)
            if (found.length >= limit) break
            if (found.length === 1 && settleMs < budgetMs) {
              clearTimeout(timer)
              timer = setTimeout(resolve, settleMs)
            }
          }
        } catch (err) {
          this.#o.logger.debug({ key, err: (err as Error).message }, 'provider lookup failed')
        } finally {
          clearTimeout(timer)
          resolve()
        }
      }
      void walk()
    })
    const zone = this.#o.zone
    const ranked = shuffle(found)
    return zone === undefined ? ranked : [...ranked.filter((p) => p.zone === zone), ...ranked.filter((p) => p.zone !== zone)]
  }

  async blobSources (req: MirrorRequest, digest: Digest, maySend = false): Promise<{ first: BlobSourceAttempt[], last: BlobSourceAttempt[], sendTo?: string }> {
    const owner = this.#o.isOwnerRouting === false ? undefined : this.owner(digest)
    // After the upstream failed, look with a patient budget (a node that just joined finds slowly).
    const last = [this.#laterHolders(req, digest)]
    // The owner too asks a peer that already holds the blob (a bundle loaded there, an earlier pull) before
    // its upstream: the bytes stay in the cluster, and a registry that is down costs nothing.
    const found = (await this.providers(digest, req.signal)).filter((p) => this.#isTrusted(digest, p))
    const sendTo = maySend ? this.#sendTo(found, owner, req, digest) : undefined
    if (sendTo !== undefined) return { first: [], last: [], sendTo }
    const holders = found.map((p) => this.#holderAttempt(p, req, digest))
    // A slow first holder is hedged with the second; the rest stay in line for resuming.
    if (holders.length >= 2) holders.splice(0, 2, hedge(holders[0] as BlobSourceAttempt, holders[1] as BlobSourceAttempt, this.#o.hedgeAfterMs ?? 250))
    if (holders.length > 0 || owner === undefined || !this.#isTrusted(digest, owner)) return { first: holders, last }
    // A broken stream from the owner (or the peer it sent us to) resumes at the owner, not upstream.
    return { first: [this.#ownerAttempt(owner, req, digest, false), this.#ownerAttempt(owner, req, digest, true)], last }
  }

  /**
   * Where this node's client gets the blob itself, unless a client was sent away for this digest a moment ago:
   * a signed location at a holder this node is connected to (a provider record may outlive its peer), or, when
   * nobody holds it yet, at the digest's owner, which serves it within its fan-out and past that sends the
   * client back here (to `req.clientHost`), where it is then served.
   */
  #sendTo (found: readonly PeerInfo[], owner: PeerInfo | undefined, req: MirrorRequest, digest: Digest): string | undefined {
    const now = Date.now()
    const until = this.#sent.get(digest)
    if (until !== undefined && until > now) return undefined
    const live = new Set(this.#o.router.peers().map((p) => p.id))
    const holder = found.find((p) => live.has(p.id))
    const back = req.clientHost !== undefined && isHostPort(req.clientHost) ? req.clientHost : undefined
    const target = blobTarget(req, digest)
    let location: string | undefined
    if (holder !== undefined) location = signedLocation(this.#o.credentials, holder.httpAddress, target)
    else if (found.length === 0 && owner !== undefined && back !== undefined && this.#isTrusted(digest, owner)) {
      location = signedLocation(this.#o.credentials, owner.httpAddress, target, 'owner', back)
    }
    if (location === undefined) return undefined
    this.#sent.delete(digest)
    this.#sent.set(digest, now + SENT_ONCE_MS)
    for (const [key, expires] of this.#sent) {
      if (this.#sent.size <= MAX_REMEMBERED && expires > now) break
      this.#sent.delete(key)
    }
    return location
  }

  #laterHolders (req: MirrorRequest, digest: Digest): BlobSourceAttempt {
    return {
      origin: { kind: 'peers' },
      open: async (offset, signal) => {
        const found = (await this.#providersWithin(digest, signal, this.#o.fallbackFindMs ?? 3000, SETTLE_MS)).filter((p) => this.#isTrusted(digest, p))
        let lastError: Error = new PeerFetchError(`no peer holds ${digest}`)
        for (const peer of found) {
          try {
            return await this.#holderAttempt(peer, req, digest).open(offset, signal)
          } catch (err) {
            lastError = err as Error
          }
        }
        throw lastError
      },
    }
  }

  /** The live peer that pulls a digest through for the cluster, or undefined when it is this node. */
  owner (key: string): PeerInfo | undefined {
    const self = this.#o.router.self()
    const peers = this.#o.router.peers()
    const id = rendezvousOwner(key, [self.id, ...peers.map((p) => p.id)])
    return id === self.id ? undefined : peers.find((p) => p.id === id)
  }

  /** A peer that holds the blob or is downloading it, asked for just that (`local`). */
  #holderAttempt (peer: PeerInfo, req: MirrorRequest, digest: Digest): BlobSourceAttempt {
    return {
      origin: { kind: 'peer', address: peer.httpAddress, role: 'holder' },
      open: async (offset, signal) => {
        const opened = await this.#openBlob(peer, req, digest, 'local', offset, signal)
        if ('redirectTo' in opened) throw new PeerFetchError(`peer ${peer.httpAddress} redirected a local request for ${digest}`)
        return opened
      },
    }
  }

  /**
   * Asks the digest's owner, which may send us to a peer already getting the blob (its fan-out limit): then
   * that peer is asked for what it holds or is downloading, and if it fails, the owner again, told to serve us.
   * `isDirect` asks the owner to serve us at once (the attempt that resumes a broken stream).
   */
  #ownerAttempt (owner: PeerInfo, req: MirrorRequest, digest: Digest, isDirect: boolean): BlobSourceAttempt {
    return {
      origin: { kind: 'peer', address: owner.httpAddress, role: 'owner' },
      open: async (offset, signal) => {
        const self = this.#o.router.self().httpAddress
        const opened = await this.#openBlob(owner, req, digest, 'owner', offset, signal, isDirect ? { [PEER_DIRECT_HEADER]: '1' } : { [PEER_FROM_HEADER]: self })
        if (!('redirectTo' in opened)) return opened
        if (opened.redirectTo !== self) {
          try {
            const relayed = await this.#openBlob({ id: opened.redirectTo, httpAddress: opened.redirectTo }, req, digest, 'local', offset, signal)
            if (!('redirectTo' in relayed)) return { ...relayed, origin: { kind: 'peer', address: opened.redirectTo, role: 'relay' } }
          } catch (err) {
            this.#o.logger.debug({ digest, peer: opened.redirectTo, err: (err as Error).message }, 'peer the owner sent us to failed; asking the owner to serve')
          }
        }
        const direct = await this.#openBlob(owner, req, digest, 'owner', offset, signal, { [PEER_DIRECT_HEADER]: '1' })
        if ('redirectTo' in direct) throw new PeerFetchError(`owner ${owner.httpAddress} redirected a direct request for ${digest}`)
        return direct
      },
    }
  }

  async #openBlob (peer: PeerInfo, req: MirrorRequest, digest: Digest, mode: PeerMode, offset: number, signal: AbortSignal, extra: Record<string, string> = {}):
  Promise<{ body: Readable, totalSize?: number } | { redirectTo: string }> {
    const res = await this.#get(peer, blobTarget(req, digest), mode, signal,
      { ...extra, ...(offset > 0 ? { range: `bytes=${offset}-` } : {}) })
    if (res.statusCode === 307 && mode === 'owner') {
      await discardBody(res.body)
      const to = relayAddress(firstHeader(res.headers, 'location'))
      if (to === undefined) throw new PeerFetchError(`owner ${peer.httpAddress} redirected ${digest} to an invalid location`)
      return { redirectTo: to }
    }
    const expected = offset > 0 ? 206 : 200
    if (res.statusCode !== expected) {
      await discardBody(res.body)
      throw new PeerFetchError(`peer ${peer.httpAddress} answered ${res.statusCode} for ${digest}`,
        mode === 'owner' && res.statusCode === 404 ? 'ERR_PEER_NOT_FOUND' : 'ERR_PEER_UNAVAILABLE')
    }
    if (res.statusCode === 206) {
      const range = parseContentRange(firstHeader(res.headers, 'content-range'))
      if (range === undefined || range.start !== offset) {
        await discardBody(res.body)
        throw new PeerFetchError(`peer ${peer.httpAddress} answered bytes from ${offset} of ${digest} with Content-Range ${firstHeader(res.headers, 'content-range') ?? '(none)'}`)
      }
      return { body: res.body as unknown as Readable, ...(range.total === undefined ? {} : { totalSize: range.total }) }
    }
    const length = firstHeader(res.headers, 'content-length')
    return { body: res.body as unknown as Readable, ...(length === undefined ? {} : { totalSize: Number(length) }) }
  }

  async manifest (req: MirrorRequest, ref: ManifestRef, accept: string, isPatient: boolean): Promise<{ bytes: Buffer, mediaType: string } | undefined> {
    const key = ref.kind === 'digest' ? ref.digest : `${req.registry}/${req.repository}:${ref.tag}`
    const reference = ref.kind === 'digest' ? ref.digest : ref.tag
    const budget = isPatient ? (this.#o.fallbackFindMs ?? 3000) : (this.#o.findBudgetMs ?? 5)
    // One line for the miss, however many peers failed on the way.
    const failed: string[] = []
    for (const peer of await this.#providersWithin(key, req.signal, budget, SETTLE_MS)) {
      try {
        const res = await this.#get(peer, `/v2/${req.repository}/manifests/${reference}?ns=${encodeURIComponent(req.registry)}`, 'local', req.signal, { accept })
        if (res.statusCode !== 200) {
          await discardBody(res.body)
          continue
        }
        // Bounded as it is read: a peer's answer is never buffered past what a manifest may be.
        const bytes = await readLimited(res.body as unknown as Readable, MAX_MANIFEST_BYTES)
        if (bytes === undefined) continue
        return { bytes, mediaType: firstHeader(res.headers, 'content-type') ?? 'application/vnd.oci.image.manifest.v1+json' }
      } catch (err) {
        failed.push(`${peer.httpAddress}: ${(err as Error).message}`)
      }
    }
    if (failed.length > 0) this.#o.logger.debug({ key, failed }, 'peer manifest fetch failed')
    return undefined
  }

  async #get (peer: PeerInfo, path: string, mode: PeerMode, signal: AbortSignal, headers: Record<string, string>): Promise<Dispatcher.ResponseData> {
    try {
      const url = new URL(path, `http://${peer.httpAddress}`)
      // Signed for this one request, with the target exactly as sent; redirects are not followed (a request
      // to where an owner sends us is made, and signed, by #ownerAttempt).
      const credential = this.#o.credentials.sign(mode, 'GET', `${url.pathname}${url.search}`)
      return await request(url, { dispatcher: this.#o.dispatcher, signal, headers: { ...headers, [PEER_HEADER]: credential } })
    } catch (err) {
      throw new PeerFetchError(`peer ${peer.httpAddress} unreachable: ${(err as Error).message}`, 'ERR_PEER_UNAVAILABLE', { cause: err })
    }
  }
}

/** The request target of a blob at a peer. */
function blobTarget (req: MirrorRequest, digest: Digest): string {
  return `/v2/${req.repository}/blobs/${digest}?ns=${encodeURIComponent(req.registry)}`
}

/** Fisher–Yates, in place. */
function shuffle<T> (items: T[]): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1))
    ;[items[i], items[j]] = [items[j] as T, items[i] as T]
  }
  return items
}

/** `host:port` of an owner's redirect (`http://host:port/v2/...`), or undefined when it is anything else. */
function relayAddress (location: string | undefined): string | undefined {
  if (location === undefined) return undefined
  try {
    const url = new URL(location)
    return url.protocol === 'http:' && url.pathname.startsWith('/v2/') && isHostPort(url.host) ? url.host : undefined
  } catch {
    return undefined
  }
}
