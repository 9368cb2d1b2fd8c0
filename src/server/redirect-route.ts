import type { IncomingMessage } from 'node:http'
import type { Metrics } from '../metrics/metrics.js'
import type { Digest } from '../oci/index.js'
import { parseApiPath } from './api-route.js'
import type { Route } from './route.js'
import { API_HEADERS } from './send-error.js'

/** Where a blob request is sent instead of being served (the redirector role). */
export interface BlobRedirects {
  decide (req: IncomingMessage, repository: string, digest: Digest): Promise<{ readonly location: string, readonly region: string | null, readonly reason: string }>
}

/**
 * `GET`/`HEAD /v2/<name>/blobs/<digest>` answered with a 307 to the chosen copy; clients follow it and verify
 * the digest as usual. Everything else goes on to the next route (manifests and tags from the origin).
 */
export function redirectRoute (redirects: BlobRedirects, metrics: Metrics): Route {
  return {
    isCounted: true,
    matches: (target, req) => (req.method === 'GET' || req.method === 'HEAD') && /^\/v2\/.+\/blobs\/[^/]+$/.test(target.pathname) && !target.pathname.includes('/blobs/uploads'),
    serve: async ({ req, res, target }, tally) => {
      const route = parseApiPath(target.pathname)
      tally.kind = 'blob'
      if (route.kind !== 'blob') throw new Error('unreachable: the route matched a blob path')
      const d = await redirects.decide(req, route.name, route.digest)
      tally.registry = d.region ?? 'origin'
      tally.result = d.reason === 'region' ? 'peer' : 'upstream'
      if (d.reason === 'region') metrics.redirects.inc({ region: d.region ?? '' })
      else metrics.redirectFallbacks.inc({ reason: d.reason })
      res.writeHead(307, { ...API_HEADERS, location: d.location, 'content-length': '0', 'cache-control': 'no-store' })
      res.end()
    },
  }
}
