import type { Logger } from 'pino'
import { isLoopbackAddress } from '../http/is-loopback-address.js'
import { gated, type ClientGate } from './client-gate.js'
import { observabilityRoute, type ObservabilityOptions } from './observability-handler.js'
import { clientsOnlyPolicy, type PeerPolicy } from './peer-policy.js'
import { pullApiRoute, type PullApiOptions } from './pull-api-route.js'
import { pushApiRoute } from './push-api-route.js'
import { redirectRoute, type BlobRedirects } from './redirect-route.js'
import type { Route } from './route.js'
import { createRouteHandler, type Handler } from './route-handler.js'

export interface RegistryHandlerOptions extends Omit<PullApiOptions, 'peerPolicy'>, ObservabilityOptions {
  readonly logger: Logger
  /** Peer admission, loop-guard modes and the owner's fan-out. Absent: requests from peers are refused. */
  readonly peerPolicy?: PeerPolicy
  /** Clients must pass it (the mirror role's authentication); absent: every client is served. */
  readonly clientGate?: ClientGate
  /** Blob requests are redirected, not served (the redirector role). */
  readonly blobRedirects?: BlobRedirects
}

/** The HTTP edge of the API listener: its route table, headers, ranges, and the one place errors become OCI JSON. */
export function createRegistryHandler (o: RegistryHandlerOptions): Handler {
  return createRouteHandler(registryRoutes(o), o)
}

/** The API listener's routes, tried in order: a new endpoint is one more entry here. */
function registryRoutes (o: RegistryHandlerOptions): Route[] {
  const gate = (route: Route): Route => o.clientGate === undefined ? route : gated(route, o.clientGate, o.metrics)
  return [
    // Probes reveal nothing and load balancers need them; metrics do, so only this host scrapes them here
    // (others use the metricsListen address, if the operator opened one).
    observabilityRoute(o, (req) => isLoopbackAddress(req.socket.remoteAddress)),
    // Content given to this node (flotilla load): this host and cluster peers only.
    ...(o.blobRedirects === undefined ? [] : [gate(redirectRoute(o.blobRedirects, o.metrics))]),
    gate(pushApiRoute({ ...o, peerPolicy: o.peerPolicy ?? clientsOnlyPolicy() })),
    // Last: it answers every other path, NAME_UNKNOWN for what is not the pull API.
    gate(pullApiRoute({ ...o, peerPolicy: o.peerPolicy ?? clientsOnlyPolicy() })),
  ]
}
