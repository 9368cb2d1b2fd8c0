import { pipeline, Transform } from 'node:stream'
import type { Logger } from 'pino'
import type { Digest } from '../oci/index.js'
import type { UpstreamStatus } from './undici-upstream.js'
import type { BlobBody, ManifestBody, ManifestHead, PassThroughResponse, Upstream } from './upstream.js'
import { UpstreamError } from './upstream-error.js'

/** A source of a registry's content: a mirror (asked with `?ns=`) or the registry's own endpoint. */
export interface ChainLink {
  /** What logs and metrics call it: the mirror's URL, or `endpoint`. */
  readonly name: string
  readonly upstream: Upstream & { status?: () => UpstreamStatus[] }
}

export interface ChainedUpstreamOptions {
  /** Each registry's endpoint. */
  readonly primary: Upstream & { status (): UpstreamStatus[] }
  /** Per registry, the mirrors tried in order before its endpoint. */
  readonly mirrors: ReadonlyMap<string, readonly ChainLink[]>
  readonly logger: Logger
  /** Hears which link answered a request (or failed it), for the per-endpoint metrics. */
  readonly onResult?: (link: string, registry: string, result: 'ok' | 'failed' | 'not-found') => void
  /** Hears the bytes of blob bodies each link delivered, as they arrive. */
  readonly onBytes?: (link: string, registry: string, bytes: number) => void
}

/**
 * A registry's mirrors (a central flotilla, Zot, Distribution's proxy), then its endpoint. A mirror that
 * fails (connection, 5xx, timeout, its circuit open) or refuses us (401, 403) is passed over at once, and so
 * is its 404 (a mirror may lack what the registry has); the endpoint's answer is the last word. Bytes are
 * verified by the caller whatever link served them. One warning per mirror and kind of failure, not per request.
 */
export class ChainedUpstream implements Upstream {
  readonly #o: ChainedUpstreamOptions
  readonly #warned = new Set<string>()

  constructor (options: ChainedUpstreamOptions) {
    this.#o = options
  }

  has (registry: string): boolean {
    return this.#o.primary.has(registry)
  }

  /** Every endpoint and mirror, with its circuit: for the status page. */
  status (): UpstreamStatus[] {
    const seen = new Set<unknown>()
    const mirrors: UpstreamStatus[] = []
    for (const links of this.#o.mirrors.values()) {
      for (const link of links) {
        if (seen.has(link.upstream)) continue
        seen.add(link.upstream)
        mirrors.push(...(link.upstream.status?.() ?? []))
      }
    }
    return [...this.#o.primary.status(), ...mirrors]
  }

  async headManifest (registry: string, repository: string, reference: string, accept: string, signal?: AbortSignal): Promise<ManifestHead> {
    return await this.#first(registry, async (u) => await u.headManifest(registry, repository, reference, accept, signal))
  }

  async getManifest (registry: string, repository: string, reference: string, accept: string, signal?: AbortSignal): Promise<ManifestBody> {
    return await this.#first(registry, async (u) => await u.getManifest(registry, repository, reference, accept, signal))
  }

  async getBlob (registry: string, repository: string, digest: Digest, offset?: number, signal?: AbortSignal): Promise<BlobBody> {
    let servedBy = 'endpoint'
    const blob = await this.#first(registry, async (u, link) => {
      const b = await u.getBlob(registry, repository, digest, offset, signal)
      servedBy = link
      return b
    })
    // Which source a pull's bytes came from: one line per blob (a digest is fetched once for the cluster).
    this.#o.logger.info({ registry, repository, digest, servedBy, offset }, 'blob fetched upstream')
    const onBytes = this.#o.onBytes
    // Only a registry with mirrors needs its bytes told apart (without, they are all the endpoint's, counted
    // in flotilla_upstream_bytes_total): the cold path stays one stream for the others.
    if (onBytes === undefined || !this.#o.mirrors.has(registry)) return blob
    const counter = new Transform({
      transform (chunk: Buffer, _encoding, done) {
        onBytes(servedBy, registry, chunk.byteLength)
        done(null, chunk)
      },
    })
    pipeline(blob.body, counter, () => {})
    return { ...blob, body: counter }
  }

  async headBlob (registry: string, repository: string, digest: Digest, signal?: AbortSignal): Promise<{ size: number | undefined }> {
    return await this.#first(registry, async (u) => await u.headBlob(registry, repository, digest, signal))
  }

  async passThrough (registry: string, repository: string, path: string, query: string, accept: string | undefined, signal?: AbortSignal): Promise<PassThroughResponse> {
    return await this.#first(registry, async (u) => await u.passThrough(registry, repository, path, query, accept, signal))
  }

  async close (): Promise<void> {
    const closing = new Set<Upstream>([this.#o.primary])
    for (const links of this.#o.mirrors.values()) for (const l of links) closing.add(l.upstream)
    await Promise.all([...closing].map(async (u) => { await u.close() }))
  }

  async #first<T> (registry: string, ask: (u: Upstream, link: string) => Promise<T>): Promise<T> {
    for (const link of this.#o.mirrors.get(registry) ?? []) {
      try {
        const answer = await ask(link.upstream, link.name)
        this.#o.onResult?.(link.name, registry, 'ok')
        return answer
      } catch (err) {
        if (!(err instanceof UpstreamError)) throw err
        const isMissing = err.code === 'ERR_UPSTREAM_NOT_FOUND'
        this.#o.onResult?.(link.name, registry, isMissing ? 'not-found' : 'failed')
        if (!isMissing && !this.#warned.has(`${link.name} ${err.code}`)) {
          this.#warned.add(`${link.name} ${err.code}`)
          this.#o.logger.warn({ mirror: link.name, registry, code: err.code, err: err.message }, 'mirror failed; going on to the next source (said once per mirror and kind of failure)')
        }
      }
    }
    try {
      const answer = await ask(this.#o.primary, 'endpoint')
      this.#o.onResult?.('endpoint', registry, 'ok')
      return answer
    } catch (err) {
      this.#o.onResult?.('endpoint', registry, err instanceof UpstreamError && err.code === 'ERR_UPSTREAM_NOT_FOUND' ? 'not-found' : 'failed')
      throw err
    }
  }
}
