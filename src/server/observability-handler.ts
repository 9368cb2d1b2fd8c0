import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Logger } from 'pino'
import { parseRequestTarget } from '../http/request-target.js'
import type { Metrics } from '../metrics/metrics.js'
import { OciError } from '../oci/index.js'
import type { Route } from './route.js'
import { sendError } from './send-error.js'

export interface ObservabilityOptions {
  readonly metrics: Metrics
  readonly isReady: () => boolean
  /** Refreshes gauges that are read, not pushed (store size, peers), before /metrics answers. */
  readonly beforeScrape?: () => Promise<void>
}

export type ObservabilityPath = '/healthz' | '/readyz' | '/metrics'

function isObservabilityPath (pathname: string): pathname is ObservabilityPath {
  return pathname === '/healthz' || pathname === '/readyz' || pathname === '/metrics'
}

/** Answers a health probe or a scrape; who may ask is decided by the listener that calls it. */
async function serveObservability (path: ObservabilityPath, method: string, res: ServerResponse, o: ObservabilityOptions): Promise<void> {
  if (path === '/healthz') return sendText(res, 200, 'ok\n', method)
  if (path === '/readyz') return sendText(res, o.isReady() ? 200 : 503, o.isReady() ? 'ready\n' : 'not ready\n', method)
  await o.beforeScrape?.()
  sendText(res, 200, await o.metrics.registry.metrics(), method, o.metrics.registry.contentType)
}

/**
 * The probes and the scrape as a route of another listener (not counted as API requests); `mayScrape` says
 * who gets /metrics there; to the others it is not a route here.
 */
export function observabilityRoute (o: ObservabilityOptions, mayScrape: (req: IncomingMessage) => boolean): Route {
  return {
    isCounted: false,
    matches: ({ pathname }, req) => isObservabilityPath(pathname) && (pathname !== '/metrics' || mayScrape(req)),
    serve: async ({ target, method, res }) => {
      if (isObservabilityPath(target.pathname)) await serveObservability(target.pathname, method, res, o)
    },
  }
}

/** The `metricsListen` server: /metrics, /healthz and /readyz to anyone who can reach its address, nothing else. */
export function createObservabilityHandler (o: ObservabilityOptions & { readonly logger: Logger }): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    const method = req.method ?? 'GET'
    const run = async (): Promise<void> => {
      const { pathname } = parseRequestTarget(req.url ?? '')
      if (!isObservabilityPath(pathname)) throw new OciError('NAME_UNKNOWN', 'this listener serves /metrics, /healthz and /readyz only')
      if (method !== 'GET' && method !== 'HEAD') throw new OciError('UNSUPPORTED', `${method} is not supported here`)
      await serveObservability(pathname, method, res, o)
    }
    run().catch((err: unknown) => { sendError(res, err, 'other', method === 'HEAD', o.logger) })
  }
}

function sendText (res: ServerResponse, status: number, body: string, method: string, contentType = 'text/plain; charset=utf-8'): void {
  res.writeHead(status, { 'content-type': contentType, 'content-length': String(Buffer.byteLength(body)) })
  res.end(method === 'HEAD' ? undefined : body)
}
