import { request, type Dispatcher } from 'undici'
import { discardBody } from '../http/discard-body.js'

export interface RedirectingRequest {
  readonly dispatcher: Dispatcher
  readonly method: 'GET' | 'HEAD'
  readonly url: URL
  readonly headers: Readonly<Record<string, string>>
  /** Sent only to the origin of `url`: blob storage a registry redirects to must never see its credentials. */
  readonly authorization?: string
  readonly maxRedirects: number
  readonly signal?: AbortSignal
}

export interface FinalResponse {
  readonly response: Dispatcher.ResponseData
  /** Where the response came from, after redirects. */
  readonly url: URL
}

const REDIRECT_STATUSES: ReadonlySet<number> = new Set([301, 302, 303, 307, 308])

/**
 * Sends a request and follows up to `maxRedirects` redirects itself (rather than through undici's
 * interceptor) so the Authorization header can be dropped on cross-origin hops. A redirect that cannot
 * be followed is returned as the final response for the caller to treat as an error status.
 */
export async function requestFollowingRedirects (req: RedirectingRequest): Promise<FinalResponse> {
  const origin = req.url.origin
  let url = req.url
  for (let hop = 0; ; hop++) {
    const headers = req.authorization !== undefined && url.origin === origin
      ? { ...req.headers, authorization: req.authorization }
      : req.headers
    const response = await request(url, { dispatcher: req.dispatcher, method: req.method, headers, signal: req.signal })
    const next = hop < req.maxRedirects && REDIRECT_STATUSES.has(response.statusCode)
      ? redirectTarget(url, response.headers.location)
      : undefined
    if (next === undefined) return { response, url }
    // Drained so the connection goes back to the pool.
    await discardBody(response.body)
    url = next
  }
}

function redirectTarget (from: URL, location: string | string[] | undefined): URL | undefined {
  const value = Array.isArray(location) ? location[0] : location
  if (value === undefined || value === '') return undefined
  let target: URL
  try {
    target = new URL(value, from)
  } catch {
    return undefined
  }
  return target.protocol === 'https:' || target.protocol === 'http:' ? target : undefined
}
