import { randomUUID } from 'node:crypto'
import type { ServerResponse } from 'node:http'
import { hasCode } from '../errors/flotilla-error.js'
import { isLoopbackAddress } from '../http/is-loopback-address.js'
import { readLimited } from '../http/read-limited.js'
import type { RequestTarget } from '../http/request-target.js'
import type { Mirror } from '../mirror/mirror.js'
import { MAX_MANIFEST_BYTES, OciError, parseDigest, type Digest } from '../oci/index.js'
import { parseApiPath } from './api-route.js'
import type { PeerPolicy } from './peer-policy.js'
import { resolveTarget, type PullApiOptions } from './pull-api-route.js'
import type { Route } from './route.js'
import { API_HEADERS } from './send-error.js'

export interface PushApiOptions extends Pick<PullApiOptions, 'defaultRegistry' | 'registries'> {
  readonly mirror: Mirror
  readonly peerPolicy: PeerPolicy
}

/** Upload sessions are only a name for the PUT that follows their POST: kept this long, this many at most. */
const UPLOAD_TTL_MS = 60 * 60_000
const MAX_UPLOADS = 1024
const WRITE_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE'])

/**
 * The OCI push API, for content given to this node (`flotilla load`): monolithic blob uploads (POST, then
 * PUT with the whole blob; or POST with `?digest=`) and manifest PUTs. Only this host and peers with the
 * cluster's credentials may push; anyone else gets DENIED. Blobs are verified before they are kept.
 */
export function pushApiRoute (o: PushApiOptions): Route {
  const uploads = new Map<string, { readonly name: string, readonly expiresAt: number }>()
  const newUpload = (name: string): string => {
    const now = Date.now()
    for (const [id, u] of uploads) if (u.expiresAt < now || uploads.size >= MAX_UPLOADS) uploads.delete(id)
    const id = randomUUID()
    uploads.set(id, { name, expiresAt: now + UPLOAD_TTL_MS })
    return id
  }
  return {
    isCounted: true,
    matches: (target, req) => WRITE_METHODS.has(req.method ?? '') && target.pathname.startsWith('/v2/'),
    serve: async ({ req, res, target, method }, tally) => {
      const route = parseApiPath(target.pathname)
      tally.kind = route.kind === 'manifest' ? 'manifest' : route.kind === 'upload' ? 'blob' : 'other'
      if (!isLoopbackAddress(req.socket.remoteAddress) && o.peerPolicy.admit(req).kind !== 'peer') {
        throw new OciError('DENIED', 'content is accepted only from this host (flotilla load) or from peers with the cluster\'s credentials')
      }
      if (route.kind !== 'upload' && route.kind !== 'manifest') throw new OciError('UNSUPPORTED', `${method} is not supported on this endpoint`)
      const repo = resolveTarget(route.name, target.params.get('ns'), o)
      tally.registry = repo.registry
      tally.result = 'hit'
      if (route.kind === 'manifest') {
        if (method !== 'PUT') throw new OciError('UNSUPPORTED', `${method} of a manifest is not supported`)
        const bytes = await readLimited(req, MAX_MANIFEST_BYTES)
        if (bytes === undefined) throw new OciError('MANIFEST_INVALID', `manifest larger than ${MAX_MANIFEST_BYTES} bytes`)
        const kept = await asOci(o.mirror.load.putManifest({ ...repo, signal: AbortSignal.timeout(60_000) }, route.ref, bytes, req.headers['content-type']))
        created(res, `/v2/${route.name}/manifests/${route.ref.kind === 'tag' ? route.ref.tag : kept.digest}`, kept.digest, target)
        return
      }
      const id = target.pathname.slice(`/v2/${route.name}/blobs/uploads`.length).replace(/^\/+/, '')
      const digestParam = target.params.get('digest')
      if (method === 'POST' && id === '' && digestParam === null) {
        const upload = newUpload(route.name)
        res.writeHead(202, { ...API_HEADERS, location: withQuery(`/v2/${route.name}/blobs/uploads/${upload}`, target), 'docker-upload-uuid': upload, range: '0-0', 'content-length': '0' })
        res.end()
        return
      }
      if (method === 'PATCH') throw new OciError('UNSUPPORTED', 'chunked uploads are not supported here: PUT the whole blob with ?digest=')
      if (!(method === 'PUT' && id !== '') && !(method === 'POST' && id === '')) throw new OciError('UNSUPPORTED', `${method} is not supported on an upload`)
      if (method === 'PUT' && uploads.get(id)?.name !== route.name) throw new OciError('BLOB_UPLOAD_UNKNOWN', `no upload ${id} for ${route.name}`)
      if (digestParam === null) throw new OciError('DIGEST_INVALID', 'the digest query parameter is required')
      const digest = parseDigest(digestParam).digest
      const length = req.headers['content-length']
      const size = length === undefined ? undefined : Number(length)
      if (size !== undefined && !Number.isSafeInteger(size)) throw new OciError('SIZE_INVALID', `bad Content-Length ${length}`)
      await asOci(o.mirror.load.putBlob(digest, size, req))
      uploads.delete(id)
      created(res, `/v2/${route.name}/blobs/${digest}`, digest, target)
    },
  }
}

function withQuery (path: string, target: RequestTarget): string {
  const ns = target.params.get('ns')
  return ns === null ? path : `${path}?ns=${encodeURIComponent(ns)}`
}

function created (res: ServerResponse, location: string, digest: Digest, target: RequestTarget): void {
  res.writeHead(201, { ...API_HEADERS, location: withQuery(location, target), 'docker-content-digest': digest, 'content-length': '0' })
  res.end()
}

/** What a push can get wrong, in the API's terms (a GET's table calls these unavailable or unknown). */
async function asOci<T> (work: Promise<T>): Promise<T> {
  try {
    return await work
  } catch (err) {
    if (hasCode(err, 'ERR_DIGEST_MISMATCH')) throw new OciError('DIGEST_INVALID', err.message, undefined, { cause: err })
    if (hasCode(err, 'ERR_NOT_HELD')) throw new OciError('MANIFEST_BLOB_UNKNOWN', err.message, undefined, { cause: err })
    throw err
  }
}
