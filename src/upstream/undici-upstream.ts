import { setTimeout as sleep } from 'node:timers/promises'
import type { Logger } from 'pino'
import { Agent, type Dispatcher } from 'undici'
import { MAX_MANIFEST_BYTES, type Digest } from '../oci/index.js'
import { CircuitBreaker, type CircuitState } from './circuit-breaker.js'
import { parseContentRange } from '../http/content-range.js'
import { discardBody } from '../http/discard-body.js'
import { firstHeader } from '../http/first-header.js'
import { requestFollowingRedirects } from './follow-redirects.js'
import { manifestHeadFromHeaders, readManifestResponse } from './manifest-response.js'
import { readLimited } from '../http/read-limited.js'
import { RegistryAuth } from './registry-auth.js'
import { parseRetryAfter } from './retry-after.js'
import { skipBytes } from './skip-bytes.js'
import { isConnectionRefused, statusToUpstreamError, toUpstreamError } from './to-upstream-error.js'
import { TokenCache } from './token-cache.js'
import type { BlobBody, ManifestBody, ManifestHead, PassThroughResponse, Upstream } from './upstream.js'
import { UpstreamError } from './upstream-error.js'
import { UNDICI_UPSTREAM_DEFAULTS, type UndiciUpstreamOptions } from './undici-upstream-options.js'
import { validateUpstreamOptions } from './validate-upstream-options.js'

// Importers of the client find its options beside it.
export { UNDICI_UPSTREAM_DEFAULTS, type UndiciUpstreamOptions } from './undici-upstream-options.js'

/** Enough parallel layer pulls per registry without opening a socket per request. */
const CONNECTIONS_PER_ORIGIN = 32
const MAX_REDIRECTS = 5
const USER_AGENT = 'flotilla'
const PASS_THROUGH_HEADERS = ['content-type', 'link', 'docker-content-digest', 'oci-filters-applied'] as const

interface Call {
  readonly registry: string
  readonly repository: string
  readonly method: 'GET' | 'HEAD'
  /** Below `/v2/<repository>/`, query included. */
  readonly path: string
  readonly headers: Readonly<Record<string, string>>
  readonly signal: AbortSignal | undefined
}

export interface UpstreamStatus {
  readonly registry: string
  readonly endpoint: string
  readonly circuit: CircuitState
  readonly lastError: string | null
  readonly lastErrorAt: string | null
}

/** The upstream registries over one pooled undici Agent, with auth, retries and a breaker per registry. */
export class UndiciUpstream implements Upstream {
  readonly #endpoints: ReadonlyMap<string, URL>
  readonly #breakers = new Map<string, CircuitBreaker>()
  readonly #agent: Agent
  readonly #auth: RegistryAuth
  readonly #logger: Logger
  readonly #retries: number
  readonly #retryBaseMs: number
  readonly #maxRetryAfterMs: number
  readonly #namespaceQuery: boolean

  constructor (options: UndiciUpstreamOptions) {
    const settings = { ...UNDICI_UPSTREAM_DEFAULTS, ...options }
    this.#endpoints = validateUpstreamOptions(settings)
    this.#logger = options.logger
    this.#retries = settings.retries
    this.#retryBaseMs = settings.retryBaseMs
    this.#maxRetryAfterMs = settings.maxRetryAfterMs
    this.#namespaceQuery = options.namespaceQuery === true
    for (const registry of this.#endpoints.keys()) {
      this.#breakers.set(registry, new CircuitBreaker({
        ...options.breaker,
        onStateChange: (from, to) => {
          this.#logger[to === 'open' ? 'warn' : 'info']({ registry, from, to }, `upstream circuit ${to}`)
        },
      }))
    }
    this.#agent = new Agent({
      connections: CONNECTIONS_PER_ORIGIN,
      connect: { timeout: settings.connectTimeoutMs, ...options.tls },
      headersTimeout: settings.headersTimeoutMs,
      bodyTimeout: settings.bodyTimeoutMs,
    })
    this.#auth = new RegistryAuth({
      dispatcher: this.#agent,
      tokens: new TokenCache(),
      logger: this.#logger,
      ...(options.credentials === undefined ? {} : { credentials: options.credentials }),
    })
  }

  /** Each registry's endpoint (without credentials), circuit state and last failure: for the status page. */
  status (): UpstreamStatus[] {
    return [...this.#endpoints].map(([registry, url]) => {
      const breaker = this.#breakers.get(registry)
      const failure = breaker?.lastFailure
      return {
        registry, endpoint: `${url.origin}${url.pathname}`.replace(/\/$/, ''), circuit: breaker?.state ?? 'closed',
        lastError: failure?.message ?? null, lastErrorAt: failure === undefined ? null : new Date(failure.at).toISOString(),
      }
    })
  }

  has (registry: string): boolean {
    return this.#endpoints.has(registry)
  }

  async headManifest (registry: string, repository: string, reference: string, accept: string, signal?: AbortSignal): Promise<ManifestHead> {
    const call = this.#call(registry, repository, 'HEAD', `manifests/${reference}`, { accept }, signal)
    const head = await this.#execute(call, async (response, what) => {
      await discardBody(response.body)
      return manifestHeadFromHeaders({ registry, reference, what }, response.headers)
    })
    if (head !== undefined) return head
    // Some registries omit Docker-Content-Digest on HEAD: the body is the only way to learn the digest.
    const { bytes: _bytes, ...fromBody } = await this.getManifest(registry, repository, reference, accept, signal)
    return fromBody
  }

  async getManifest (registry: string, repository: string, reference: string, accept: string, signal?: AbortSignal): Promise<ManifestBody> {
    const call = this.#call(registry, repository, 'GET', `manifests/${reference}`, { accept }, signal)
    return await this.#execute(call, async (response, what) => await readManifestResponse({ registry, reference, what }, response))
  }

  async getBlob (registry: string, repository: string, digest: Digest, offset = 0, signal?: AbortSignal): Promise<BlobBody> {
    if (!Number.isSafeInteger(offset) || offset < 0) throw new TypeError(`offset must be a non-negative integer, got ${String(offset)}`)
    const headers: Record<string, string> = offset > 0 ? { range: `bytes=${offset}-` } : {}
    const call = this.#call(registry, repository, 'GET', `blobs/${digest}`, headers, signal)
    return await this.#execute(call, async (response, what) => {
      const length = contentLength(response)
      if (response.statusCode === 206) {
        const range = parseContentRange(firstHeader(response.headers, 'content-range'))
        if (range === undefined || range.start !== offset) {
          await discardBody(response.body)
          throw new UpstreamError('ERR_UPSTREAM_INVALID_RESPONSE', `${what}: asked for bytes from ${offset}, got Content-Range ${firstHeader(response.headers, 'content-range') ?? '(none)'}`, registry)
        }
        return blobBody(206, length ?? range.end - range.start + 1, range.total, response.body)
      }
      if (offset === 0) return blobBody(200, length, length, response.body)
      // The upstream ignored Range and sent everything: hand over only what was asked for.
      return blobBody(206, length === undefined ? undefined : Math.max(0, length - offset), length, skipBytes(response.body, offset))
    })
  }

  async headBlob (registry: string, repository: string, digest: Digest, signal?: AbortSignal): Promise<{ size: number | undefined }> {
    const call = this.#call(registry, repository, 'HEAD', `blobs/${digest}`, {}, signal)
    return await this.#execute(call, async (response) => {
      await discardBody(response.body)
      return { size: contentLength(response) }
    })
  }

  async passThrough (registry: string, repository: string, path: string, query: string, accept: string | undefined, signal?: AbortSignal): Promise<PassThroughResponse> {
    const search = query.replace(/^\?/, '')
    const fullPath = `${path.replace(/^\/+/, '')}${search === '' ? '' : `?${search}`}`
    const call = this.#call(registry, repository, 'GET', fullPath, accept === undefined ? {} : { accept }, signal)
    return await this.#execute(call, async (response, what) => {
      const body = await readLimited(response.body, MAX_MANIFEST_BYTES)
      if (body === undefined) throw new UpstreamError('ERR_UPSTREAM_INVALID_RESPONSE', `${what}: response exceeds ${MAX_MANIFEST_BYTES} bytes`, registry)
      const headers: Record<string, string> = {}
      for (const name of PASS_THROUGH_HEADERS) {
        const value = firstHeader(response.headers, name)
        if (value !== undefined) headers[name] = value
      }
      return { status: response.statusCode, headers, body }
    })
  }

  async close (): Promise<void> {
    await this.#agent.close()
  }

  #call (registry: string, repository: string, method: Call['method'], path: string, headers: Record<string, string>, signal: AbortSignal | undefined): Call {
    return { registry, repository, method, path, headers: { 'user-agent': USER_AGENT, ...headers }, signal }
  }

  /**
   * One logical request: breaker check, send (with auth and redirects), status mapping, then `consume` on a
   * 2xx. Failures worth another try are retried while nothing has been handed to the caller; `consume`
   * runs inside the attempt, so a manifest body cut short is retried too.
   */
  async #execute<T>(call: Call, consume: (response: Dispatcher.ResponseData, what: string) => Promise<T>): Promise<T> {
    const { registry, signal } = call
    const endpoint = this.#endpoints.get(registry)
    const breaker = this.#breakers.get(registry)
    if (endpoint === undefined || breaker === undefined) {
      throw new UpstreamError('ERR_UPSTREAM_UNKNOWN_REGISTRY', `no upstream is configured for registry ${JSON.stringify(registry)}`, registry)
    }
    const url = new URL(`${endpoint.href}v2/${call.repository}/${call.path}`)
    if (this.#namespaceQuery) url.searchParams.set('ns', registry)
    const what = `${call.method} ${url.href}`
    let lastError: UpstreamError | undefined
    for (let attempt = 0; ; attempt++) {
      signal?.throwIfAborted()
      if (!breaker.tryAcquire()) {
        throw lastError ?? new UpstreamError('ERR_UPSTREAM_CIRCUIT_OPEN', `${what}: ${registry} has been failing, not trying it for now`, registry)
      }
      let retryAfterMs: number | undefined
      try {
        const response = await this.#send(call, endpoint, url, what)
        if (response.statusCode >= 200 && response.statusCode <= 299) {
          const result = await consume(response, what)
          breaker.recordSuccess()
          return result
        }
        retryAfterMs = parseRetryAfter(firstHeader(response.headers, 'retry-after'), Date.now())
        await discardBody(response.body)
        throw statusToUpstreamError(registry, response.statusCode, what)
      } catch (err) {
        if (signal?.aborted === true) {
          breaker.release()
          throw signal.reason
        }
        const error = toUpstreamError(registry, err, what)
        if (error.isUnavailable) breaker.recordFailure(error)
        else breaker.recordSuccess()
        // An open circuit would refuse the retry anyway, and a refused connection is not worth a backoff.
        if (!error.isUnavailable || attempt >= this.#retries || breaker.state === 'open' || isConnectionRefused(err)) throw error
        const delayMs = retryAfterMs === undefined ? this.#backoffMs(attempt) : Math.min(retryAfterMs, this.#maxRetryAfterMs)
        this.#logger.debug({ registry, url: url.href, code: error.code, status: error.status, attempt: attempt + 1, delayMs }, 'retrying upstream request')
        await sleep(delayMs, undefined, signal === undefined ? {} : { signal }).catch((sleepErr: unknown) => {
          throw signal?.aborted === true ? signal.reason : sleepErr
        })
        lastError = error
      }
    }
  }

  /** Sends one attempt; a 401 is answered once (token or Basic) and the request sent again. */
  async #send (call: Call, endpoint: URL, url: URL, what: string): Promise<Dispatcher.ResponseData> {
    const scope = `repository:${call.repository}:pull`
    let authorization = this.#auth.preemptive(call.registry, scope)
    for (let isChallenged = false; ; isChallenged = true) {
      const { response, url: answeredBy } = await requestFollowingRedirects({
        dispatcher: this.#agent,
        method: call.method,
        url,
        headers: call.headers,
        ...(authorization === undefined ? {} : { authorization }),
        maxRedirects: MAX_REDIRECTS,
        ...(call.signal === undefined ? {} : { signal: call.signal }),
      })
      // Only the registry's own challenges are answered, never those of storage it redirected to.
      if (response.statusCode !== 401 || isChallenged || answeredBy.origin !== url.origin) return response
      const challenge = response.headers['www-authenticate']
      await discardBody(response.body)
      authorization = await this.#auth.answer(call.registry, endpoint, scope, challenge, call.signal)
      if (authorization === undefined) throw statusToUpstreamError(call.registry, 401, what)
    }
  }

  /** Exponential with equal jitter, so clients that failed together do not retry together. */
  #backoffMs (attempt: number): number {
    const ceiling = this.#retryBaseMs * 2 ** attempt
    return ceiling / 2 + Math.random() * (ceiling / 2)
  }
}

function contentLength (response: Dispatcher.ResponseData): number | undefined {
  const value = firstHeader(response.headers, 'content-length')
  const n = value === undefined ? NaN : Number(value)
  return Number.isSafeInteger(n) && n >= 0 ? n : undefined
}

function blobBody (status: 200 | 206, length: number | undefined, totalSize: number | undefined, body: BlobBody['body']): BlobBody {
  return {
    status,
    body,
    ...(length === undefined ? {} : { length }),
    ...(totalSize === undefined ? {} : { totalSize }),
  }
}
