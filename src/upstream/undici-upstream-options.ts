import type { Logger } from 'pino'
import type { CircuitBreakerOptions } from './circuit-breaker.js'
import type { DockerCredentials } from './docker-credentials.js'

// Apart from the client, so validating them does not import it (and the client imports the validation).
export interface UndiciUpstreamOptions {
  /** Keyed by normalized registry name (`docker.io`, `127.0.0.1:5001`); endpoint like `https://registry-1.docker.io`. */
  readonly registries: ReadonlyMap<string, { readonly endpoint: string }>
  readonly credentials?: DockerCredentials
  readonly logger: Logger
  readonly connectTimeoutMs?: number
  readonly headersTimeoutMs?: number
  /** Longest silence allowed between two chunks of a body. */
  readonly bodyTimeoutMs?: number
  /** Further attempts after a 5xx, 429 or connection failure. */
  readonly retries?: number
  readonly retryBaseMs?: number
  /** Cap on waiting for a `Retry-After`, so a caller is never parked for minutes. */
  readonly maxRetryAfterMs?: number
  /** One breaker per registry, all built from these options. */
  readonly breaker?: Omit<CircuitBreakerOptions, 'onStateChange'>
  /** Requests carry `?ns=<registry>` (the endpoints are mirrors serving many registries, as containerd asks them). */
  readonly namespaceQuery?: boolean
  /** TLS of the endpoints: a CA (PEM) to trust, or no verification at all. */
  readonly tls?: { readonly ca?: string | Buffer, readonly rejectUnauthorized?: boolean }
}

export const UNDICI_UPSTREAM_DEFAULTS = {
  connectTimeoutMs: 5000,
  headersTimeoutMs: 15_000,
  bodyTimeoutMs: 30_000,
  retries: 2,
  retryBaseMs: 200,
  maxRetryAfterMs: 5000,
} as const
