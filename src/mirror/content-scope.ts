import type { Logger } from 'pino'
import { FlotillaError } from '../errors/flotilla-error.js'
import { DEFAULT_MANIFEST_ACCEPT, type Digest } from '../oci/index.js'
import type { ScopeIndex } from '../store/scope-index.js'
import type { Upstream } from '../upstream/upstream.js'
import { UpstreamError } from '../upstream/upstream-error.js'
import type { MirrorRequest } from './mirror-types.js'

export interface ContentScopeOptions {
  readonly scopes: ScopeIndex
  readonly upstream: Upstream
  /** Whether this node fetches from a registry with credentials: what it fetches there is restricted. */
  readonly fetchesWithCredentials: (registry: string) => boolean
  readonly logger: Logger
  readonly now: () => number
  /** A bound for one confirmation upstream, detached from the client. */
  readonly signal: () => AbortSignal
}

/** How long an upstream's "this repository does not have it" is believed, and how many such answers are kept. */
const REFUSAL_TTL_MS = 30_000
const MAX_REFUSALS = 10_000

/**
 * Which repositories may read content held here. Public content is served under any repository. Content
 * fetched with credentials, held by containerd for a registry we have credentials for, or asked for under such
 * a registry, is served only where it is known to be: fetched under it, held by containerd under an image of
 * it, or confirmed by the upstream with our credentials (remembered in the ScopeIndex; refusals for 30 s).
 */
export class ContentScope {
  readonly #o: ContentScopeOptions
  /** `digest repository` → when the upstream's refusal to confirm it there expires. */
  readonly #refusals = new Map<string, number>()

  constructor (options: ContentScopeOptions) {
    this.#o = options
  }

  /** Content fetched for `req` from a registry we send credentials to is restricted to where it is known. */
  noteFetched (req: MirrorRequest, digest: Digest): void {
    if (!this.#o.fetchesWithCredentials(req.registry)) return
    this.#o.scopes.add(digest, `${req.registry}/${req.repository}`).catch((err: unknown) => {
      this.#o.logger.warn({ digest, err: (err as Error).message }, 'could not persist where restricted content is known')
    })
  }

  /** Whether what is asked for under `registry` is restricted (this node fetches there with credentials). */
  isRestricted (registry: string): boolean {
    return this.#o.fetchesWithCredentials(registry)
  }

  /** Throws ERR_NOT_IN_SCOPE unless `req` may read `digest`; `knownIn` is where containerd holds it. */
  async check (req: MirrorRequest, digest: Digest, kind: 'blob' | 'manifest', knownIn: readonly string[] = []): Promise<void> {
    const where = `${req.registry}/${req.repository}`
    const known = this.#o.scopes.get(digest)
    // containerd names a registry by its host alone (no port) in its labels.
    const here = `${hostOf(req.registry)}/${req.repository}`
    // Asked under a registry we hold credentials for, anything is restricted: that holds even if the index was lost.
    const isRestricted = known !== undefined || this.#o.fetchesWithCredentials(req.registry) ||
      knownIn.some((k) => this.#o.fetchesWithCredentials(k.slice(0, k.indexOf('/'))))
    if (!isRestricted || known?.has(where) === true || knownIn.includes(where) || knownIn.includes(here)) return
    const refused = new FlotillaError('ERR_NOT_IN_SCOPE', `${kind} ${where}@${digest} is not known in this repository`)
    const key = `${digest} ${where}`
    if (req.localOnly === true || !this.#o.upstream.has(req.registry) || (this.#refusals.get(key) ?? 0) > this.#o.now()) throw refused
    try {
      if (kind === 'blob') await this.#o.upstream.headBlob(req.registry, req.repository, digest, this.#o.signal())
      else await this.#o.upstream.headManifest(req.registry, req.repository, digest, DEFAULT_MANIFEST_ACCEPT, this.#o.signal())
    } catch (err) {
      // Unreachable: the client hears so (and may fall back); a refusal is remembered a while.
      if (!(err instanceof UpstreamError) || err.isUnavailable) throw err
      this.#refuse(key)
      throw refused
    }
    // Known in memory at once; a record that cannot be written (a full disk) is confirmed again after a restart.
    await this.#o.scopes.add(digest, where).catch((err: unknown) => {
      this.#o.logger.warn({ digest, where, err: (err as Error).message }, 'could not persist where restricted content is known')
    })
  }

  #refuse (key: string): void {
    this.#refusals.delete(key)
    this.#refusals.set(key, this.#o.now() + REFUSAL_TTL_MS)
    for (const oldest of this.#refusals.keys()) {
      if (this.#refusals.size <= MAX_REFUSALS) break
      this.#refusals.delete(oldest)
    }
  }
}

/** A registry name without its port, as containerd's `distribution.source` labels name it (`127.0.0.1:5000` → `127.0.0.1`). */
export function hostOf (registry: string): string {
  return registry.replace(/:\d+$/, '').replace(/^\[(.*)\]$/, '$1')
}
