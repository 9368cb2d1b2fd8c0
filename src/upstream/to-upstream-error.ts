import { UpstreamError, type UpstreamErrorCode } from './upstream-error.js'

const TIMEOUT_CODES: ReadonlySet<string> = new Set([
  'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'ETIMEDOUT', 'ESOCKETTIMEDOUT',
])

/** The error status an upstream answered with, as the stable code the rest of flotilla acts on. */
export function statusToUpstreamError (registry: string, status: number, what: string): UpstreamError {
  const code: UpstreamErrorCode = status === 404
    ? 'ERR_UPSTREAM_NOT_FOUND'
    : status === 401
      ? 'ERR_UPSTREAM_UNAUTHORIZED'
      : status === 403
        ? 'ERR_UPSTREAM_DENIED'
        : status === 429 ? 'ERR_UPSTREAM_TOO_MANY_REQUESTS' : 'ERR_UPSTREAM_STATUS'
  return new UpstreamError(code, `${what}: upstream answered ${status}`, registry, status)
}

/** Any failure of a request (socket, DNS, TLS, timeout) as an UpstreamError; UpstreamErrors pass through. */
export function toUpstreamError (registry: string, err: unknown, what: string): UpstreamError {
  if (err instanceof UpstreamError) return err
  const code = errorCode(err)
  const isTimeout = code !== undefined && TIMEOUT_CODES.has(code)
  const message = err instanceof Error ? err.message : String(err)
  return new UpstreamError(
    isTimeout ? 'ERR_UPSTREAM_TIMEOUT' : 'ERR_UPSTREAM_UNAVAILABLE',
    `${what}: ${code === undefined ? '' : `${code} `}${message}`.trim(),
    registry,
    undefined,
    { cause: err },
  )
}

/**
 * Nothing listens at the upstream's address (a stopped registry, a closed port): an answer within a second is
 * unlikely, so the request is not retried after a backoff; the caller's other sources (peers, the node's
 * images, a stale record) and the client's own fallback are quicker than waiting.
 */
export function isConnectionRefused (err: unknown): boolean {
  return errorCode(err) === 'ECONNREFUSED'
}

/** The system or undici error code, looking through AggregateError (happy eyeballs) and `cause` chains. */
function errorCode (err: unknown, depth = 0): string | undefined {
  if (typeof err !== 'object' || err === null || depth > 4) return undefined
  const { code, cause } = err as { code?: unknown, cause?: unknown }
  if (typeof code === 'string') return code
  if (err instanceof AggregateError) return errorCode(err.errors[0], depth + 1)
  return errorCode(cause, depth + 1)
}
