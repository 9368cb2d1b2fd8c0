import { createHash } from 'node:crypto'
import type { IncomingHttpHeaders } from 'node:http'
import type { Dispatcher } from 'undici'
import { isDigest, MAX_MANIFEST_BYTES, MediaType, parseDigest, type Digest, type ParsedDigest } from '../oci/index.js'
import { discardBody } from '../http/discard-body.js'
import { firstHeader } from '../http/first-header.js'
import { readLimited } from '../http/read-limited.js'
import type { ManifestBody, ManifestHead } from './upstream.js'
import { UpstreamError } from './upstream-error.js'

/** What a manifest request was for, to check the answer against and to name in errors. */
export interface ManifestRequest {
  readonly registry: string
  readonly reference: string
  readonly what: string
}

/**
 * The manifest a HEAD described, or undefined when its headers are not enough to answer without the body
 * (no Docker-Content-Digest, no Content-Type or no Content-Length): the caller then falls back to a GET.
 */
export function manifestHeadFromHeaders (req: ManifestRequest, headers: IncomingHttpHeaders): ManifestHead | undefined {
  const digestHeader = firstHeader(headers, 'docker-content-digest')
  const mediaType = mediaTypeOf(firstHeader(headers, 'content-type'))
  const size = contentLength(headers)
  if (digestHeader === undefined || mediaType === undefined || size === undefined) return undefined
  const announced = parseAnnouncedDigest(req, digestHeader)
  let digest = announced.digest
  if (isDigest(req.reference)) {
    const requested = parseDigest(req.reference)
    if (requested.algorithm === announced.algorithm && requested.digest !== announced.digest) {
      throw invalid(req, `asked for ${req.reference}, upstream announced ${announced.digest}`)
    }
    digest = requested.digest
  }
  const etag = firstHeader(headers, 'etag')
  return etag === undefined ? { digest, mediaType, size } : { digest, mediaType, size, etag }
}

/** Reads and checks a 2xx manifest response: bounded in size, and its bytes must match every digest claimed. */
export async function readManifestResponse (req: ManifestRequest, response: Dispatcher.ResponseData): Promise<ManifestBody> {
  const declared = contentLength(response.headers)
  if (declared !== undefined && declared > MAX_MANIFEST_BYTES) {
    await discardBody(response.body)
    throw invalid(req, `manifest is ${declared} bytes; the limit is ${MAX_MANIFEST_BYTES}`)
  }
  const bytes = await readLimited(response.body, MAX_MANIFEST_BYTES)
  if (bytes === undefined) throw invalid(req, `manifest exceeds the ${MAX_MANIFEST_BYTES}-byte limit`)
  const mediaType = mediaTypeOf(firstHeader(response.headers, 'content-type')) ?? mediaTypeInBody(bytes) ?? MediaType.OctetStream

  let digest: Digest | undefined
  if (isDigest(req.reference)) {
    digest = verified(req, parseDigest(req.reference), bytes)
  } else {
    const digestHeader = firstHeader(response.headers, 'docker-content-digest')
    const announced = digestHeader === undefined ? undefined : parseAnnouncedDigest(req, digestHeader)
    // A signed schema1 manifest's digest covers its payload without the signatures, not the bytes served.
    digest = announced === undefined
      ? hashOf('sha256', bytes)
      : mediaType === MediaType.DockerManifestV1Signed ? announced.digest : verified(req, announced, bytes)
  }
  const etag = firstHeader(response.headers, 'etag')
  const head = { digest, mediaType, size: bytes.byteLength, bytes }
  return etag === undefined ? head : { ...head, etag }
}

function verified (req: ManifestRequest, expected: ParsedDigest, bytes: Buffer): Digest {
  const actual = hashOf(expected.algorithm, bytes)
  if (actual !== expected.digest) throw invalid(req, `manifest content is ${actual}, expected ${expected.digest}`)
  return expected.digest
}

function hashOf (algorithm: ParsedDigest['algorithm'], bytes: Buffer): Digest {
  return `${algorithm}:${createHash(algorithm).update(bytes).digest('hex')}` as Digest
}

function parseAnnouncedDigest (req: ManifestRequest, value: string): ParsedDigest {
  try {
    return parseDigest(value.trim())
  } catch (err) {
    throw invalid(req, `unusable Docker-Content-Digest ${JSON.stringify(value.slice(0, 100))}`, err)
  }
}

/** `application/vnd.oci.image.index.v1+json; charset=utf-8` → the bare media type. */
function mediaTypeOf (contentType: string | undefined): string | undefined {
  const type = contentType?.split(';')[0]?.trim().toLowerCase()
  return type === undefined || type === '' ? undefined : type
}

/** Registries that omit Content-Type still put `mediaType` in every OCI and docker v2 manifest. */
function mediaTypeInBody (bytes: Buffer): string | undefined {
  try {
    const { mediaType } = JSON.parse(bytes.toString('utf8')) as { mediaType?: unknown }
    return typeof mediaType === 'string' && mediaType !== '' ? mediaType : undefined
  } catch {
    return undefined
  }
}

function contentLength (headers: IncomingHttpHeaders): number | undefined {
  const value = firstHeader(headers, 'content-length')
  const n = value === undefined ? NaN : Number(value)
  return Number.isSafeInteger(n) && n >= 0 ? n : undefined
}

function invalid (req: ManifestRequest, reason: string, cause?: unknown): UpstreamError {
  return new UpstreamError('ERR_UPSTREAM_INVALID_RESPONSE', `${req.what}: ${reason}`, req.registry, undefined,
    cause === undefined ? undefined : { cause })
}
