import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Logger } from 'pino'
import { parseRequestTarget } from '../http/request-target.js'
import type { Metrics } from '../metrics/metrics.js'
import { OciError } from '../oci/index.js'
import type { NodeStatus } from '../status/node-status.js'
import { renderStatusPage, STATUS_PAGE_CSP } from '../status/status-page.js'
import type { Route } from './route.js'
import { sendError } from './send-error.js'

export interface ObservabilityOptions {
  readonly metrics: Metrics
  readonly isReady: () => boolean
  /** Refreshes gauges that are read, not pushed (store size, peers), before /metrics answers. */
  readonly beforeScrape?: () => Promise<void>
  /** JSON status pages, served at `/status/<name>` to whoever may scrape (e.g. `precache`). */
  readonly statusPages?: Readonly<Record<string, () => unknown>>
  /** This node at a glance: `/status.json`, and `/status` rendered as HTML. */
  readonly nodeStatus?: () => Promise<NodeStatus>
}

export type ObservabilityPath = '/healthz' | '/readyz' | '/metrics' | '/status' | '/status.json' | `/status/${string}`

function isObservabilityPath (pathname: string): pathname is ObservabilityPath {
  return pathname === '/healthz' || pathname === '/readyz' || pathname === '/metrics' || pathname === '/status' ||
    pathname === '/status.json' || pathname.startsWith('/status/')
}

/** Answers a health probe, a scrape or a status page; who may ask is decided by the listener that calls it. */
async function serveObservability (path: ObservabilityPath, method: string, res: ServerResponse, o: ObservabilityOptions): Promise<void> {
  if (path === '/healthz') return sendText(res, 200, 'ok\n', method)
  if (path === '/readyz') return sendText(res, o.isReady() ? 200 : 503, o.isReady() ? 'ready\n' : 'not ready\n', method)
  if (path === '/status' || path === '/status.json') {
    if (o.nodeStatus === undefined) throw new OciError('NAME_UNKNOWN', 'no node status here')
    const status = await o.nodeStatus()
    if (path === '/status.json') return sendText(res, 200, `${JSON.stringify(status, null, 2)}\n`, method, 'application/json', NO_STORE)
    return sendText(res, 200, renderStatusPage(status), method, 'text/html; charset=utf-8', { ...NO_STORE, 'content-security-policy': STATUS_PAGE_CSP })
  }
  if (path.startsWith('/status/')) {
    const name = path.slice('/status/'.length)
    const page = Object.hasOwn(o.statusPages ?? {}, name) ? o.statusPages?.[name] : undefined
    if (page === undefined) {
      throw new OciError('NAME_UNKNOWN', name === 'precache' ? 'pre-cache is not configured on this agent (precache.file, --precache FILE)' : `no status page ${name} here`)
    }
    return sendText(res, 200, `${JSON.stringify(page(), null, 2)}\n`, method, 'application/json')
  }
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
    matches: ({ pathname }, req) => isObservabilityPath(pathname) && ((pathname === '/healthz' || pathname === '/readyz') || mayScrape(req)),
    serve: async ({ target, method, res }) => {
      if (isObservabilityPath(target.pathname)) await serveObservability(target.pathname, method, res, o)
    },
  }
}

/** The `metricsListen` server: /metrics, /healthz, /readyz, /status(.json) and /status/* to anyone who can reach its address, nothing else. */
export function createObservabilityHandler (o: ObservabilityOptions & { readonly logger: Logger }): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    const method = req.method ?? 'GET'
    const run = async (): Promise<void> => {
      const { pathname } = parseRequestTarget(req.url ?? '')
      if (!isObservabilityPath(pathname)) throw new OciError('NAME_UNKNOWN', 'this listener serves /metrics, /healthz, /readyz, /status, /status.json and /status/ pages only')
      if (method !== 'GET' && method !== 'HEAD') throw new OciError('UNSUPPORTED', `${method} is not supported here`)
      await serveObservability(pathname, method, res, o)
    }
    run().catch((err: unknown) => { sendError(res, err, 'other', method === 'HEAD', o.logger) })
  }
}

const NO_STORE = { 'cache-control': 'no-store' } as const

function sendText (res: ServerResponse, status: number, body: string, method: string, contentType = 'text/plain; charset=utf-8', headers: Readonly<Record<string, string>> = {}): void {
  res.writeHead(status, { ...headers, 'content-type': contentType, 'content-length': String(Buffer.byteLength(body)) })
  res.end(method === 'HEAD' ? undefined : body)
}
