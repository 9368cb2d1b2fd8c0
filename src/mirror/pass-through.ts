import type { Logger } from 'pino'
import { FlotillaError } from '../errors/flotilla-error.js'
import type { RequestResult } from '../metrics/metrics.js'
import type { TagIndex } from '../store/tag-index.js'
import type { PassThroughResponse, Upstream } from '../upstream/upstream.js'
import { requireUpstream } from './manifest-service.js'
import type { MirrorRequest } from './mirror-types.js'

export interface PassThroughOptions {
  readonly upstream: Upstream
  readonly tags: TagIndex
  readonly logger: Logger
}

/** Read paths answered by the upstream as it answers them: tags/list (else the tags known here), referrers. */
export class PassThrough {
  readonly #o: PassThroughOptions

  constructor (options: PassThroughOptions) {
    this.#o = options
  }

  async listTags (req: MirrorRequest, query: string): Promise<PassThroughResponse & { source: RequestResult }> {
    const { upstream, tags, logger } = this.#o
    if (upstream.has(req.registry) && req.localOnly !== true) {
      try {
        const r = await upstream.passThrough(req.registry, req.repository, 'tags/list', query, undefined, req.signal)
        return { ...r, source: 'upstream' }
      } catch (err) {
        // Only an upstream that cannot be asked falls back to what is known here; its answers (404, 401) stand.
        if (!(err instanceof FlotillaError && err.isUnavailable)) throw err
        logger.warn({ repo: `${req.registry}/${req.repository}`, err: err.message }, 'upstream failed; listing locally known tags')
      }
    }
    const known = await tags.list(req.registry, req.repository)
    if (known.length === 0) throw new FlotillaError('ERR_NOT_HELD', `tags of ${req.registry}/${req.repository}: none known here`)
    const body = Buffer.from(JSON.stringify({ name: req.repository, tags: known }))
    return { status: 200, headers: { 'content-type': 'application/json' }, body, source: 'hit' }
  }

  /** GET of another read path (referrers) passed to the upstream as it is. */
  async get (req: MirrorRequest, path: string, query: string, accept: string | undefined): Promise<PassThroughResponse> {
    const what = `${path} of ${req.registry}/${req.repository}`
    if (req.localOnly === true) throw new FlotillaError('ERR_NOT_HELD', `${what} is not held here`)
    requireUpstream(this.#o.upstream, req, what)
    return await this.#o.upstream.passThrough(req.registry, req.repository, path, query, accept, req.signal)
  }
}
