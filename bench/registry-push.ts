import { createReadStream } from 'node:fs'
import type { Readable } from 'node:stream'
import { request, type Dispatcher } from 'undici'
import { OCI_MANIFEST, type BenchImage, type BlobFile } from './blob-fixture.js'

export class PushError extends Error {
  readonly code = 'ERR_PUSH'
  constructor (message: string, readonly status: number) {
    super(message)
    this.name = 'PushError'
  }
}

export interface PushOptions {
  readonly dispatcher: Dispatcher
  readonly signal: AbortSignal
}

async function expectStatus (what: string, res: Dispatcher.ResponseData, expected: number): Promise<void> {
  const text = await res.body.text()
  if (res.statusCode !== expected) throw new PushError(`${what}: expected ${expected}, got ${res.statusCode}: ${text.slice(0, 300)}`, res.statusCode)
}

/** One monolithic upload (POST, then PUT ?digest= with the whole body): the registry's own upload API. */
async function upload (registryUrl: string, repo: string, digest: string, size: number, body: Buffer | (() => Readable), o: PushOptions): Promise<void> {
  const start = await request(`${registryUrl}/v2/${repo}/blobs/uploads/`, { method: 'POST', dispatcher: o.dispatcher, signal: o.signal })
  const location = start.headers.location
  await expectStatus(`POST ${repo} upload`, start, 202)
  if (typeof location !== 'string') throw new PushError(`POST ${repo} upload: no Location header`, start.statusCode)
  const url = new URL(location, registryUrl)
  url.searchParams.set('digest', digest)
  const put = await request(url, {
    method: 'PUT',
    dispatcher: o.dispatcher,
    signal: o.signal,
    headers: { 'content-type': 'application/octet-stream', 'content-length': String(size) },
    // A file is streamed from disk, never read whole into memory.
    body: Buffer.isBuffer(body) ? body : body(),
  })
  await expectStatus(`PUT ${repo} blob ${digest}`, put, 201)
}

export async function pushBlobFile (registryUrl: string, repo: string, blob: BlobFile, o: PushOptions): Promise<void> {
  await upload(registryUrl, repo, blob.digest, blob.size, () => createReadStream(blob.path, { highWaterMark: 1 << 20 }), o)
}

/** Pushes the layer, the config and the manifest (tagged) so manifests resolve by tag and by digest. */
export async function pushBenchImage (registryUrl: string, image: BenchImage, o: PushOptions): Promise<void> {
  await pushBlobFile(registryUrl, image.repo, image.layer, o)
  await upload(registryUrl, image.repo, image.config.digest, image.config.bytes.byteLength, image.config.bytes, o)
  const put = await request(`${registryUrl}/v2/${image.repo}/manifests/${image.tag}`, {
    method: 'PUT',
    dispatcher: o.dispatcher,
    signal: o.signal,
    headers: { 'content-type': OCI_MANIFEST },
    body: image.manifest.bytes,
  })
  const answered = put.headers['docker-content-digest']
  await expectStatus(`PUT ${image.repo} manifest ${image.tag}`, put, 201)
  if (answered !== image.manifest.digest) throw new PushError(`PUT ${image.repo} manifest: registry says ${String(answered)}, expected ${image.manifest.digest}`, put.statusCode)
}
