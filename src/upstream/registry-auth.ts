import type { Logger } from 'pino'
import type { Dispatcher } from 'undici'
import { discardBody } from '../http/discard-body.js'
import type { DockerCredentials, RegistryCredential } from './docker-credentials.js'
import { requestFollowingRedirects } from './follow-redirects.js'
import { readLimited } from '../http/read-limited.js'
import type { TokenCache } from './token-cache.js'
import { statusToUpstreamError } from './to-upstream-error.js'
import { UpstreamError } from './upstream-error.js'
import { parseWwwAuthenticate, type AuthChallenge } from './www-authenticate.js'

export interface RegistryAuthOptions {
  readonly dispatcher: Dispatcher
  readonly tokens: TokenCache
  readonly logger: Logger
  readonly credentials?: DockerCredentials
}

/** Token responses are a JWT or two; anything near this is not a token endpoint. */
const MAX_TOKEN_RESPONSE_BYTES = 1024 * 1024
const MAX_TOKEN_REDIRECTS = 5

/**
 * Answers registry auth challenges the way docker does: Bearer tokens from the challenge's realm (with Basic
 * credentials when we have them, anonymous otherwise) cached per scope, or plain Basic credentials.
 */
export class RegistryAuth {
  readonly #options: RegistryAuthOptions
  /** Registries that challenged with Basic: credentials go out with every later request, saving a 401. */
  readonly #basicRegistries = new Set<string>()
  /** Token fetches in flight, so requests that hit a 401 together share one trip to the realm. */
  readonly #inflight = new Map<string, Promise<string>>()

  constructor (options: RegistryAuthOptions) {
    this.#options = options
  }

  /** The Authorization header to send before any challenge, when one is known to be needed. */
  preemptive (registry: string, scope: string): string | undefined {
    const token = this.#options.tokens.get(registry, scope)
    if (token !== undefined) return `Bearer ${token}`
    if (!this.#basicRegistries.has(registry)) return undefined
    const credential = this.#options.credentials?.lookup(registry)
    return credential === undefined ? undefined : basic(credential)
  }

  /** The Authorization header answering a 401's challenge; undefined when there is nothing to answer with. */
  async answer (registry: string, endpoint: URL, scope: string, header: string | string[] | undefined, signal?: AbortSignal): Promise<string | undefined> {
    const challenges = parseWwwAuthenticate(header)
    const bearer = challenges.find((c) => c.scheme === 'bearer' && c.params.realm !== undefined)
    if (bearer !== undefined) {
      // The token we sent (if any) was refused: never offer it again.
      this.#options.tokens.delete(registry, scope)
      const key = `${registry}\n${scope}`
      let pending = this.#inflight.get(key)
      if (pending === undefined) {
        pending = this.#fetchToken(registry, endpoint, scope, bearer).finally(() => this.#inflight.delete(key))
        this.#inflight.set(key, pending)
      }
      return `Bearer ${await abortable(pending, signal)}`
    }
    const credential = this.#options.credentials?.lookup(registry)
    if (credential === undefined || !challenges.some((c) => c.scheme === 'basic')) return undefined
    this.#basicRegistries.add(registry)
    return basic(credential)
  }

  /** Not tied to one caller's signal (it is shared); the agent's timeouts bound it. */
  async #fetchToken (registry: string, endpoint: URL, scope: string, challenge: AuthChallenge): Promise<string> {
    const { realm = '', service, scope: challengeScope } = challenge.params
    const what = `token from ${realm}`
    let url: URL
    try {
      url = new URL(realm)
    } catch {
      throw new UpstreamError('ERR_UPSTREAM_INVALID_RESPONSE', `${registry} challenged with an invalid realm ${JSON.stringify(realm)}`, registry)
    }
    if (url.protocol !== 'https:' && url.protocol !== 'http:') {
      throw new UpstreamError('ERR_UPSTREAM_INVALID_RESPONSE', `${registry} challenged with a non-HTTP realm ${url.protocol}`, registry)
    }
    if (service !== undefined) url.searchParams.set('service', service)
    url.searchParams.append('scope', scope)
    if (challengeScope !== undefined && challengeScope !== scope) url.searchParams.append('scope', challengeScope)

    const credential = this.#options.credentials?.lookup(registry)
    // Credentials never travel in clear text to a host other than the registry's own.
    const mayAuthenticate = url.protocol === 'https:' || url.hostname === endpoint.hostname
    const { response } = await requestFollowingRedirects({
      dispatcher: this.#options.dispatcher,
      method: 'GET',
      url,
      headers: { accept: 'application/json' },
      ...(credential !== undefined && mayAuthenticate ? { authorization: basic(credential) } : {}),
      maxRedirects: MAX_TOKEN_REDIRECTS,
    })
    if (response.statusCode < 200 || response.statusCode > 299) {
      await discardBody(response.body)
      throw statusToUpstreamError(registry, response.statusCode, what)
    }
    const bytes = await readLimited(response.body, MAX_TOKEN_RESPONSE_BYTES)
    const parsed = bytes === undefined ? undefined : parseTokenResponse(bytes)
    if (parsed === undefined) throw new UpstreamError('ERR_UPSTREAM_INVALID_RESPONSE', `${what}: no token in the response`, registry)
    this.#options.tokens.set(registry, scope, parsed.token, parsed.expiresIn)
    this.#options.logger.debug({ registry, scope, expiresIn: parsed.expiresIn, authenticated: credential !== undefined }, 'fetched upstream token')
    return parsed.token
  }
}

function parseTokenResponse (bytes: Buffer): { token: string, expiresIn?: number } | undefined {
  let body: unknown
  try {
    body = JSON.parse(bytes.toString('utf8'))
  } catch {
    return undefined
  }
  if (typeof body !== 'object' || body === null) return undefined
  const { token, access_token: accessToken, expires_in: expiresIn } = body as Record<string, unknown>
  // The spec names it `token`; OAuth2-style servers answer `access_token` only.
  const value = typeof token === 'string' && token !== '' ? token : accessToken
  if (typeof value !== 'string' || value === '') return undefined
  return typeof expiresIn === 'number' ? { token: value, expiresIn } : { token: value }
}

function basic (credential: RegistryCredential): string {
  return `Basic ${Buffer.from(`${credential.username}:${credential.password}`).toString('base64')}`
}

/** Waits for a shared promise, giving up (with the signal's reason) when this caller's signal aborts. */
async function abortable<T> (promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (signal === undefined) return await promise
  signal.throwIfAborted()
  let onAbort: (() => void) | undefined
  const aborted = new Promise<never>((_resolve, reject) => {
    onAbort = () => reject(signal.reason)
    signal.addEventListener('abort', onAbort, { once: true })
  })
  try {
    return await Promise.race([promise, aborted])
  } finally {
    if (onAbort !== undefined) signal.removeEventListener('abort', onAbort)
  }
}
