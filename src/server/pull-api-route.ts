import type { IncomingMessage, ServerResponse } from 'node:http'
import { pipeline } from 'node:stream/promises'
import type { RequestTarget } from '../http/request-target.js'
import { isSendable, type ZeroCopy } from '../http/sendable.js'
import type { Metrics, RequestKind, RequestResult } from '../metrics/metrics.js'
import type { Mirror, MirrorRequest } from '../mirror/mirror.js'
import { normalizeRegistry, normalizeRepository, OciError, type Digest } from '../oci/index.js'
import { parseApiPath, type ApiRoute } from './api-route.js'
import { withoutPeerParams, type PeerPolicy } from './peer-policy.js'
import { parseRangeHeader } from './range-header.js'
import { renameTagList } from './rename-tag-list.js'
import type { Route } from './route.js'
import { API_HEADERS } from './send-error.js'

export interface PullApiOptions {
  readonly mirror: Mirror
  readonly metrics: Metrics
  /** Registry for requests without `ns` (skopeo, docker). */
  readonly defaultRegistry: string
  /** Configured registry names: a first path component equal to one routes there (`/v2/ghcr.io/o/r/...`). */
  readonly registries: ReadonlySet<string>
  /** Who may ask and in which mode, and the owner's fan-out of blobs to peers. */
  readonly peerPolicy: PeerPolicy
  /** Serves blobs from files with `sendfile(2)` where it can; without it, every byte goes through JavaScript. */
  readonly zeroCopy?: ZeroCopy
  /**
   * A client's blob GET (no Range: not a resume) that nothing here has gets a 307 to a peer that holds it, or
   * while none does to its owner, instead of being relayed and kept here (for a node whose containerd keeps the
   * copy); see RemoteContent.blobSources.
   */
  readonly sendToHolders?: boolean
}

/**
 * The OCI pull API under `/v2/`, read-only. It matches every path, so it comes last in a table: what it
 * does not know is NAME_UNKNOWN, counted as an API request.
 */
export function pullApiRoute (o: PullApiOptions): Route {
  return {
    isCounted: true,
    matches: () => true,
    serve: async ({ req, res, target, method, signal }, tally) => {
      const route = parseApiPath(target.pathname)
      tally.kind = routeKind(route)
      if (method !== 'GET' && method !== 'HEAD') throw new OciError('UNSUPPORTED', `${method} is not supported: this is a pull-through mirror (read-only)`)
      if (route.kind === 'upload') throw new OciError('UNSUPPORTED', 'push is not supported: this is a pull-through mirror (read-only)')
      const admission = o.peerPolicy.admit(req)
      if (admission.kind === 'refused') throw new OciError('UNAUTHORIZED', 'this agent answers peers only with valid cluster credentials')
      if (route.kind === 'base') {
        tally.result = 'hit'
        res.writeHead(200, { ...API_HEADERS, 'content-type': 'application/json', 'content-length': '2' })
        res.end(method === 'HEAD' ? undefined : '{}')
        return
      }
      const repo = resolveTarget(route.name, target.params.get('ns'), o)
      tally.registry = repo.registry
      // The loop guard: a peer's request is answered without asking peers, a `local` one from what is here.
      const mode = admission.kind === 'peer' ? admission.mode : undefined
      // `Cache-Control: only-if-cached` (RFC 9111) asks what is here, as a peer in local mode does (flotilla load).
      const onlyIfCached = /(^|,)\s*only-if-cached\s*(,|$)/i.test(String(req.headers['cache-control'] ?? ''))
      const mreq: MirrorRequest = { ...repo, signal, localOnly: mode === 'local' || onlyIfCached, noPeers: mode !== undefined || onlyIfCached }
      tally.result = await serveRoute(route, mreq, mode === 'owner', target, req, res, o)
    },
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
export function resolveTarget (name: string, ns: string | null, o: Pick<PullApiOptions, 'defaultRegistry' | 'registries'>): { registry: string, repository: string } {
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

async function serveRoute (route: ApiRoute, mreq: MirrorRequest, isOwnerAsked: boolean, target: RequestTarget, req: IncomingMessage, res: ServerResponse, o: PullApiOptions): Promise<RequestResult> {
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
      // A peer asking this node, the digest's owner: served here, or sent on to a peer already getting it.
      const ticket = isHead || !isOwnerAsked ? undefined : o.peerPolicy.enterOwnedBlob(req, route.digest)
      if (ticket?.redirectTo !== undefined) {
        const query = withoutPeerParams(target.params)
        res.writeHead(307, { ...API_HEADERS, location: `http://${ticket.redirectTo}${target.rawPathname}${query === '' ? '' : `?${query}`}`, 'content-length': '0' })
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

async function serveBlob (digest: Digest, mreq: MirrorRequest, req: IncomingMessage, res: ServerResponse, o: PullApiOptions): Promise<RequestResult> {
  const isHead = req.method === 'HEAD'
  // A request with Range is a resume: the place a client was sent to failed it, so it is served from here.
  const maySend = o.sendToHolders === true && !isHead && req.headers.range === undefined
  const host = req.headers.host
  const b = await o.mirror.getBlob(maySend && host !== undefined ? { ...mreq, clientHost: host } : mreq, digest, maySend)
  if ('sendTo' in b) {
    res.writeHead(307, { ...API_HEADERS, location: b.sendTo, 'content-length': '0' })
    res.end()
    o.metrics.sentToHolder.inc()
    return 'peer'
  }
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
  try {
    if (isSendable(body)) {
      await body.sendTo(res, (n) => { sent += n }, o.zeroCopy)
    } else {
      body.on('data', (c: Buffer) => { sent += c.byteLength })
      await pipeline(body, res)
    }
  } catch (err) {
    // A client that has every byte may hang up before our end-of-response: that is a served blob.
    if (headers['content-length'] === undefined || sent !== Number(headers['content-length'])) throw err
  } finally {
    o.metrics.servedBytes.inc({ source: b.source }, sent)
  }
  return b.source
}
