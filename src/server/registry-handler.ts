import type { IncomingMessage, ServerResponse } from 'node:http'
import { pipeline } from 'node:stream/promises'
import type { Logger } from 'pino'
import type { Metrics, RequestKind, RequestResult } from '../metrics/metrics.js'
import type { Mirror, MirrorRequest } from '../mirror/mirror.js'
import { normalizeRegistry, normalizeRepository, OciError, type Digest } from '../oci/index.js'
import type { FanoutTicket } from '../p2p/owner-fanout.js'
import { PEER_DIRECT_HEADER, PEER_FROM_HEADER, PEER_HEADER, type PeerMode } from '../p2p/peer-auth.js'
import { isHostPort } from '../p2p/router.js'
import { isLoopbackAddress } from '../http/is-loopback-address.js'
import { parseRequestTarget, type RequestTarget } from '../http/request-target.js'
import { parseApiPath, type ApiRoute } from './api-route.js'
import { isObservabilityPath, serveObservability } from './observability-handler.js'
import { parseRangeHeader } from './range-header.js'
import { renameTagList } from './rename-tag-list.js'
import { API_HEADERS, sendError } from './send-error.js'

export interface RegistryHandlerOptions {
  readonly mirror: Mirror
  readonly metrics: Metrics
  readonly logger: Logger
  /** Registry for requests without `ns` (skopeo, docker). */
  readonly defaultRegistry: string
  /** Configured registry names: a first path component equal to one routes there (`/v2/ghcr.io/o/r/...`). */
  readonly registries: ReadonlySet<string>
  readonly isReady: () => boolean
  /** Refreshes gauges that are read, not pushed (store size, peers), before /metrics answers (to loopback). */
  readonly beforeScrape?: () => Promise<void>
  /** Admits a request (peer credentials); `mode` says what a peer asked for. Absent: peer requests are refused. */
  readonly checkRequest?: (req: IncomingMessage) => { ok: boolean, mode?: PeerMode }
  /** Bounds how many peers this node streams a digest it owns to (the rest are sent to those peers). */
  readonly ownerFanout?: { enter (digest: string, peer: string): FanoutTicket }
}

type Handler = (req: IncomingMessage, res: ServerResponse) => void

/** The HTTP edge: routes, headers, ranges, and the one place errors become OCI JSON. */
export function createRegistryHandler (o: RegistryHandlerOptions): Handler {
  return (req, res) => {
    const started = process.hrtime.bigint()
    const controller = new AbortController()
    res.on('close', () => { if (!res.writableFinished) controller.abort(new Error('client went away')) })
    let kind: RequestKind = 'other'
    let registry = '-'
    let result: RequestResult = 'error'
    let isApi = false
    const done = (): void => {
      if (!isApi) return
      o.metrics.requests.inc({ registry, kind, result })
      o.metrics.duration.observe({ kind }, Number(process.hrtime.bigint() - started) / 1e9)
      o.logger.debug({ method: req.method, url: req.url, status: res.statusCode, kind, registry, result, ms: Number(process.hrtime.bigint() - started) / 1e6 }, 'request')
    }
    const run = async (): Promise<void> => {
      const target = parseRequestTarget(req.url ?? '')
      const method = req.method ?? 'GET'
      // Probes reveal nothing and load balancers need them; metrics do, so only this host scrapes them here
      // (others use the metricsListen address, if the operator opened one).
      const path = target.pathname
      if (isObservabilityPath(path) && (path !== '/metrics' || isLoopbackAddress(req.socket.remoteAddress))) {
        return await serveObservability(path, method, res, o)
      }
      isApi = true
      const route = parseApiPath(path)
      kind = routeKind(route)
      if (method !== 'GET' && method !== 'HEAD') throw new OciError('UNSUPPORTED', `${method} is not supported: this is a pull-through mirror (read-only)`)
      if (route.kind === 'upload') throw new OciError('UNSUPPORTED', 'push is not supported: this is a pull-through mirror (read-only)')
      const check = o.checkRequest?.(req) ?? { ok: req.headers[PEER_HEADER] === undefined }
      if (!check.ok) throw new OciError('UNAUTHORIZED', 'this agent answers peers only with valid cluster credentials')
      if (route.kind === 'base') {
        result = 'hit'
        res.writeHead(200, { ...API_HEADERS, 'content-type': 'application/json', 'content-length': '2' })
        res.end(method === 'HEAD' ? undefined : '{}')
        return
      }
      const repo = resolveTarget(route.name, target.params.get('ns'), o)
      registry = repo.registry
      const mreq: MirrorRequest = { ...repo, signal: controller.signal, localOnly: check.mode === 'local', noPeers: check.mode !== undefined }
      result = await serveRoute(route, mreq, target, req, res, o)
    }
    run().then(done, (err: unknown) => {
      sendError(res, err, req.method === 'HEAD', o.logger)
      result = 'error'
      if (err instanceof OciError && err.status === 404) result = 'miss'
      done()
    })
  }
}

function routeKind (route: ApiRoute): RequestKind {
  switch (route.kind) {
    case 'manifest': return 'manifest'
    case 'blob': case 'upload': return 'blob'
    case 'tags': return 'tags'
    case 'referrers': return 'referrers'
    default: return 'other'
  }
}

/** Picks the upstream registry: containerd's `ns`, else a configured registry as first path component, else the default. */
export function resolveTarget (name: string, ns: string | null, o: Pick<RegistryHandlerOptions, 'defaultRegistry' | 'registries'>): { registry: string, repository: string } {
  let registry = o.defaultRegistry
  let repoName = name
  if (ns !== null && ns !== '') {
    registry = normalizeRegistry(ns)
  } else {
    const slash = name.indexOf('/')
    const first = slash === -1 ? '' : name.slice(0, slash)
    if (first !== '' && o.registries.has(first)) {
      registry = first
      repoName = name.slice(slash + 1)
    }
  }
  return { registry, repository: normalizeRepository(registry, repoName) }
}

async function serveRoute (route: ApiRoute, mreq: MirrorRequest, target: RequestTarget, req: IncomingMessage, res: ServerResponse, o: RegistryHandlerOptions): Promise<RequestResult> {
  const isHead = req.method === 'HEAD'
  switch (route.kind) {
    case 'manifest': {
      const m = await o.mirror.getManifest(mreq, route.ref, req.headers.accept)
      const headers: Record<string, string> = {
        ...API_HEADERS, 'content-type': m.mediaType, 'content-length': String(m.size), 'docker-content-digest': m.digest, etag: `"${m.digest}"`,
      }
      if (m.staleSeconds !== undefined) {
        headers['x-flotilla-stale-seconds'] = String(m.staleSeconds)
        headers.warning = '110 flotilla "Response is Stale"'
      }
      res.writeHead(200, headers)
      res.end(isHead ? undefined : m.body)
      if (!isHead) o.metrics.servedBytes.inc({ source: m.source }, m.size)
      return m.source
    }
    case 'blob': {
      const ticket = isHead ? undefined : ownerTicket(route.digest, mreq, req, o)
      if (ticket?.redirectTo !== undefined) {
        res.writeHead(307, { ...API_HEADERS, location: `http://${ticket.redirectTo}${target.rawPathname}${target.query === '' ? '' : `?${target.query}`}`, 'content-length': '0' })
        res.end()
        o.metrics.ownerRedirects.inc()
        return 'peer'
      }
      try {
        return await serveBlob(route.digest, mreq, req, res, o)
      } finally {
        ticket?.leave()
      }
    }
    case 'tags': {
      const t = await o.mirror.listTags(mreq, target.query)
      const ns = target.params.get('ns') ?? undefined
      // The mirror answers for the upstream's repository; the client must see the one it asked for.
      const answer = renameTagList(t, { name: route.name, rawPathname: target.rawPathname, ...(ns === undefined ? {} : { ns }) })
      res.writeHead(t.status, { ...API_HEADERS, ...answer.headers, 'content-length': String(answer.body.byteLength) })
      res.end(isHead ? undefined : answer.body)
      return t.source
    }
    case 'referrers': {
      const r = await o.mirror.passThrough(mreq, `referrers/${route.digest}`, target.query, req.headers.accept)
      res.writeHead(r.status, { ...API_HEADERS, ...r.headers, 'content-length': String(r.body.byteLength) })
      res.end(isHead ? undefined : r.body)
      return 'upstream'
    }
    default:
      throw new OciError('NAME_UNKNOWN', 'no such endpoint')
  }
}

async function serveBlob (digest: Digest, mreq: MirrorRequest, req: IncomingMessage, res: ServerResponse, o: RegistryHandlerOptions): Promise<RequestResult> {
  const isHead = req.method === 'HEAD'
  const b = await o.mirror.getBlob(mreq, digest)
  const range = b.size === undefined ? undefined : parseRangeHeader(req.headers.range, b.size)
  const headers: Record<string, string> = {
    ...API_HEADERS, 'content-type': 'application/octet-stream', 'docker-content-digest': digest, 'accept-ranges': 'bytes', etag: `"${digest}"`,
  }
  let status = 200
  if (range !== undefined && b.size !== undefined) {
    status = 206
    headers['content-range'] = `bytes ${range.start}-${range.end}/${b.size}`
    headers['content-length'] = String(range.end - range.start + 1)
  } else if (b.size !== undefined) {
    headers['content-length'] = String(b.size)
  }
  if (isHead) {
    res.writeHead(status, headers)
    res.end()
    return b.source
  }
  const body = await b.open(range)
  res.writeHead(status, headers)
  let sent = 0
  body.on('data', (c: Buffer) => { sent += c.byteLength })
  try {
    await pipeline(body, res)
  } catch (err) {
    // A client that has every byte may hang up before our end-of-response: that is a served blob.
    if (headers['content-length'] === undefined || sent !== Number(headers['content-length'])) throw err
  } finally {
    o.metrics.servedBytes.inc({ source: b.source }, sent)
  }
  return b.source
}

/**
 * A peer asking this node, the digest's owner, for a blob: served here, or sent to a peer already getting it
 * when the owner streams it to enough peers (OwnerFanout). Not for clients, HEAD, or a peer that asks to be
 * served here because the one it was sent to failed.
 */
function ownerTicket (digest: Digest, mreq: MirrorRequest, req: IncomingMessage, o: RegistryHandlerOptions): FanoutTicket | undefined {
  if (o.ownerFanout === undefined || mreq.noPeers !== true || mreq.localOnly === true || req.headers[PEER_DIRECT_HEADER] !== undefined) return undefined
  const from = req.headers[PEER_FROM_HEADER]
  const peer = Array.isArray(from) ? from[0] : from
  if (peer === undefined || !isHostPort(peer)) return undefined
  return o.ownerFanout.enter(digest, peer)
}
