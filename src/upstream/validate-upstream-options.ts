import { CircuitBreaker } from './circuit-breaker.js'
import type { UndiciUpstreamOptions } from './undici-upstream-options.js'

type Settings = UndiciUpstreamOptions & Required<Pick<UndiciUpstreamOptions,
  'connectTimeoutMs' | 'headersTimeoutMs' | 'bodyTimeoutMs' | 'retries' | 'retryBaseMs' | 'maxRetryAfterMs'>>

/**
 * Throws TypeError on options that cannot work, so a bad configuration fails at startup rather than on the
 * first pull. Returns each registry's endpoint as a URL whose path ends in `/` (a path prefix is kept).
 */
export function validateUpstreamOptions (settings: Settings): ReadonlyMap<string, URL> {
  const { registries, logger } = settings
  if (!(registries instanceof Map)) throw new TypeError('registries must be a Map of registry name to { endpoint }')
  if (typeof logger?.warn !== 'function') throw new TypeError('logger must be a pino Logger')
  for (const name of ['connectTimeoutMs', 'headersTimeoutMs', 'bodyTimeoutMs'] as const) {
    const value = settings[name]
    if (!Number.isFinite(value) || value <= 0) throw new TypeError(`${name} must be a positive number, got ${String(value)}`)
  }
  for (const name of ['retryBaseMs', 'maxRetryAfterMs'] as const) {
    const value = settings[name]
    if (!Number.isFinite(value) || value < 0) throw new TypeError(`${name} must be a non-negative number, got ${String(value)}`)
  }
  if (!Number.isSafeInteger(settings.retries) || settings.retries < 0) {
    throw new TypeError(`retries must be a non-negative integer, got ${String(settings.retries)}`)
  }
  // Built once here so bad breaker options fail even with no registry configured.
  new CircuitBreaker(settings.breaker)

  const endpoints = new Map<string, URL>()
  for (const [registry, { endpoint }] of registries) {
    let url: URL
    try {
      url = new URL(endpoint)
    } catch {
      throw new TypeError(`registry ${registry}: endpoint ${JSON.stringify(endpoint)} is not a URL`)
    }
    if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new TypeError(`registry ${registry}: endpoint must be http or https, got ${url.protocol}`)
    if (url.search !== '' || url.hash !== '' || url.username !== '' || url.password !== '') {
      throw new TypeError(`registry ${registry}: endpoint must not carry a query, fragment or credentials`)
    }
    if (!url.pathname.endsWith('/')) url.pathname += '/'
    endpoints.set(registry, url)
  }
  return endpoints
}
