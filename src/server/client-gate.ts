import type { Metrics } from '../metrics/metrics.js'
import { OciError } from '../oci/index.js'
import type { Route } from './route.js'

/** Who may use the API (the mirror role's clients): admits a client by its address and `Authorization`. */
export interface ClientGate {
  check (address: string | undefined, authorization: string | undefined): Promise<{ readonly ok: true } | { readonly ok: false, readonly reason: string }>
}

/** The Basic challenge of a refused client: registries' clients (containerd, skopeo, docker) answer it with their credentials. */
export const BASIC_CHALLENGE = 'Basic realm="flotilla"'

/**
 * `route` behind the gate: a client it does not admit gets 401 UNAUTHORIZED with a Basic challenge and an OCI
 * error body, counted by reason, and the route never sees the request.
 */
export function gated (route: Route, gate: ClientGate, metrics: Metrics): Route {
  return {
    isCounted: route.isCounted,
    matches: (target, req) => route.matches(target, req),
    serve: async (request, tally) => {
      const { req, res } = request
      const verdict = await gate.check(req.socket.remoteAddress, req.headers.authorization)
      if (!verdict.ok) {
        metrics.authFailures.inc({ reason: verdict.reason })
        res.setHeader('www-authenticate', BASIC_CHALLENGE)
        throw new OciError('UNAUTHORIZED', verdict.reason === 'missing' ? 'authentication required' : 'wrong or unknown credentials')
      }
      await route.serve(request, tally)
    },
  }
}
