import { randomUUID } from 'node:crypto'
import type { ServerResponse } from 'node:http'
import type { Logger } from 'pino'
import type { RequestKind } from '../metrics/metrics.js'
import { ociErrorFor } from './oci-error-for.js'

export const API_HEADERS = { 'docker-distribution-api-version': 'registry/2.0' } as const

/** Errors become OCI JSON here and only here. A response already under way is aborted, never finished. */
export function sendError (res: ServerResponse, err: unknown, kind: RequestKind, isHead: boolean, logger: Logger): void {
  if (res.headersSent) {
    // A client that went away (containerd cancelled, a peer that hedged and took the other copy) is not a fault.
    if ((err as { code?: unknown }).code === 'ERR_STREAM_PREMATURE_CLOSE') logger.debug({ err: (err as Error).message }, 'client went away mid-body')
    else logger.warn({ err: (err as Error).message }, 'response aborted mid-body')
    res.destroy(err as Error)
    return
  }
  let status: number
  let doc: unknown
  const headers: Record<string, string> = { ...API_HEADERS, 'content-type': 'application/json' }
  const oci = ociErrorFor(err, kind)
  if (oci !== undefined) {
    if (oci.status >= 500) logger.warn({ code: oci.code, err: oci.message }, 'request failed')
    status = oci.status
    doc = oci.toJSON()
    const size = (oci.detail as { size?: number } | undefined)?.size
    if (oci.code === 'RANGE_INVALID' && size !== undefined) headers['content-range'] = `bytes */${size}`
    if (oci.code === 'UNSUPPORTED') headers.allow = 'GET, HEAD'
  } else {
    // Unknown errors: a request id to find the log line, never a stack trace.
    const id = randomUUID()
    logger.error({ err, requestId: id }, 'unexpected error')
    status = 500
    doc = { errors: [{ code: 'UNKNOWN', message: `internal error (request id ${id})` }] }
  }
  const body = JSON.stringify(doc)
  headers['content-length'] = String(Buffer.byteLength(body))
  res.writeHead(status, headers)
  res.end(isHead ? undefined : body)
}
