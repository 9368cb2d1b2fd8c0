import type { Readable } from 'node:stream'
import { Agent, request } from 'undici'
import { errorBodyMessage } from '../http/error-body.js'
import { readLimited } from '../http/read-limited.js'
import { includedChildren, MAX_MANIFEST_BYTES, parseImageReference, parseManifest, type Digest } from '../oci/index.js'
import { BundleError } from './bundle-error.js'
import { readBundle } from './bundle-reader.js'
import { missingContent } from './image-completeness.js'

/** Where blobs are pushed: the store is content-addressed, so one name serves every image's blobs. */
const BLOB_REPOSITORY = 'flotilla/load'
/** Asks the agent what it holds, never to fetch (a miss is a 404, not a download from the upstream). */
const ONLY_HERE = { 'cache-control': 'only-if-cached' }

export interface LoadBundleOptions {
  /** The agent on this node, e.g. `http://127.0.0.1:5000`. */
  readonly agent: string
  readonly signal?: AbortSignal
  /** Running total of blob bytes read from the files. */
  readonly onProgress?: (bytes: number) => void
}

export interface LoadedImage {
  readonly ref: string
  readonly digest: Digest
}

export interface LoadResult {
  readonly images: LoadedImage[]
  readonly blobs: number
  readonly newBlobs: number
  readonly bytes: number
}

interface Image { ref: string, digest: Digest, mediaType: string, size: number, platforms: string[] }

/**
 * Loads bundle files (or every part of one, in any order) into the agent: each blob is verified while it
 * streams and pushed as it goes (the agent verifies it again before keeping it); once every file is read and
 * each image is complete for the platforms it claims (counting what the agent already holds), its manifests
 * are put, children first, and only then its tag. An incomplete image gets no tag: the error names what is missing.
 */
export async function loadBundle (files: readonly string[], o: LoadBundleOptions): Promise<LoadResult> {
  const agent = new AgentClient(o.agent, o.signal)
  try {
    const images = new Map<string, Image>()
    const carried = new Set<Digest>()
    let bytes = 0
    let newBlobs = 0
    for (const file of files) {
      const contents = await readBundle(file, {
        ...(o.signal === undefined ? {} : { signal: o.signal }),
        onBlob: async (digest, size, body) => {
          if (await agent.pushBlob(digest, size, body)) newBlobs++
          bytes += size
          o.onProgress?.(bytes)
        },
      })
      for (const d of contents.blobs.keys()) carried.add(d)
      const platformsOf = new Map((contents.info?.images ?? []).map((i) => [i.digest, i.platforms]))
      for (const i of contents.index.images) {
        if (i.ref === undefined) continue
        images.set(i.ref, { ref: i.ref, digest: i.digest, mediaType: i.mediaType, size: i.size, platforms: platformsOf.get(i.digest) ?? [] })
      }
    }
    if (images.size === 0) throw new BundleError('ERR_BUNDLE_INVALID', `${files.join(', ')}: no named image in index.json`)
    const has = async (d: Digest): Promise<boolean> => carried.has(d) || await agent.hasBlob(d)
    const loaded: LoadedImage[] = []
    const incomplete: string[] = []
    for (const image of images.values()) {
      const missing = await missingContent(image, has, async (d) => await agent.readBlob(d))
      if (missing.length > 0) {
        incomplete.push(`${image.ref} lacks ${missing.length} blob(s), e.g. ${missing[0] ?? ''}`)
        continue
      }
      await putImage(agent, image)
      loaded.push({ ref: image.ref, digest: image.digest })
    }
    if (incomplete.length > 0) {
      throw new BundleError('ERR_BUNDLE_INCOMPLETE', `${incomplete.join('; ')}${loaded.length === 0 ? '' : ` (loaded: ${loaded.map((i) => i.ref).join(', ')})`}; load the bundle that has them first`)
    }
    return { images: loaded, blobs: carried.size, newBlobs, bytes }
  } finally {
    await agent.close()
  }
}

/** The image's manifests into the agent: the included children by digest, then the top one under its tag. */
async function putImage (agent: AgentClient, image: Image): Promise<void> {
  const ref = parseImageReference(image.ref)
  const at = { registry: ref.registry, repository: ref.repository }
  const top = await agent.readBlob(image.digest)
  if (top === undefined) throw new BundleError('ERR_BUNDLE_INCOMPLETE', `${image.ref}: the agent does not hold its manifest ${image.digest}`)
  const parsed = parseManifest(top, image.mediaType)
  for (const child of includedChildren(parsed, image.platforms)) {
    const bytes = await agent.readBlob(child.digest)
    if (bytes !== undefined) await agent.putManifest(at, child.digest, bytes, child.mediaType)
  }
  await agent.putManifest(at, ref.tag ?? image.digest, top, image.mediaType)
}

/** The agent's push API, over one connection pool. */
class AgentClient {
  readonly #root: string
  readonly #dispatcher = new Agent({ connect: { timeout: 10_000 }, headersTimeout: 120_000, bodyTimeout: 120_000 })
  readonly #signal: AbortSignal | undefined

  constructor (base: string, signal: AbortSignal | undefined) {
    let url: URL
    try {
      url = new URL(base)
    } catch {
      throw new BundleError('ERR_BUNDLE_IO', `--agent must be an http(s) URL, got ${JSON.stringify(base)}`)
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new BundleError('ERR_BUNDLE_IO', `--agent must be an http(s) URL, got ${base}`)
    this.#root = url.toString().replace(/\/+$/, '')
    this.#signal = signal
  }

  async close (): Promise<void> {
    await this.#dispatcher.close()
  }

  /** Pushes a blob (POST, then PUT of the whole body); false when the agent already held it. */
  async pushBlob (digest: Digest, size: number, body: Readable): Promise<boolean> {
    if (await this.hasBlob(digest)) {
      for await (const chunk of body) void chunk
      return false
    }
    const start = await this.#call('POST', `/v2/${BLOB_REPOSITORY}/blobs/uploads/`)
    if (start.statusCode !== 202) await this.#fail(`starting the upload of ${digest}`, start)
    start.body.resume()
    const location = String(start.headers.location ?? '')
    const put = await this.#call('PUT', `${location}${location.includes('?') ? '&' : '?'}digest=${digest}`, body, { 'content-type': 'application/octet-stream', 'content-length': String(size) })
    if (put.statusCode !== 201) await this.#fail(`uploading ${digest}`, put)
    put.body.resume()
    return true
  }

  async hasBlob (digest: Digest): Promise<boolean> {
    const res = await this.#call('HEAD', `/v2/${BLOB_REPOSITORY}/blobs/${digest}`, undefined, ONLY_HERE)
    res.body.resume()
    return res.statusCode === 200
  }

  /** A small blob (a manifest) back from the agent, or undefined when it is not held. */
  async readBlob (digest: Digest): Promise<Buffer | undefined> {
    const res = await this.#call('GET', `/v2/${BLOB_REPOSITORY}/blobs/${digest}`, undefined, ONLY_HERE)
    if (res.statusCode === 404) {
      res.body.resume()
      return undefined
    }
    if (res.statusCode !== 200) await this.#fail(`reading ${digest} back`, res)
    const bytes = await readLimited(res.body as unknown as Readable, MAX_MANIFEST_BYTES)
    if (bytes === undefined) throw new BundleError('ERR_BUNDLE_INVALID', `${digest} is named as a manifest but is larger than ${MAX_MANIFEST_BYTES} bytes`)
    return bytes
  }

  async putManifest (at: { registry: string, repository: string }, reference: string, bytes: Buffer, mediaType: string): Promise<void> {
    const res = await this.#call('PUT', `/v2/${at.repository}/manifests/${reference}?ns=${encodeURIComponent(at.registry)}`, bytes, { 'content-type': mediaType })
    if (res.statusCode !== 201) await this.#fail(`putting manifest ${at.registry}/${at.repository}:${reference}`, res)
    res.body.resume()
  }

  async #call (method: string, path: string, body?: Buffer | Readable, headers: Record<string, string> = {}): Promise<Awaited<ReturnType<typeof request>>> {
    try {
      return await request(`${this.#root}${path}`, {
        method: method as 'GET', dispatcher: this.#dispatcher, headers,
        ...(body === undefined ? {} : { body }), ...(this.#signal === undefined ? {} : { signal: this.#signal }),
      })
    } catch (err) {
      if (err instanceof BundleError || (err as { code?: string }).code?.startsWith('ERR_BUNDLE') === true) throw err
      const cause = (err as { cause?: unknown }).cause
      if (cause instanceof BundleError) throw cause
      throw new BundleError('ERR_BUNDLE_IO', `cannot reach the agent at ${this.#root}: ${(err as Error).message}`, { cause: err })
    }
  }

  async #fail (what: string, res: Awaited<ReturnType<typeof request>>): Promise<never> {
    const message = await errorBodyMessage(res.body as unknown as Readable)
    throw new BundleError('ERR_BUNDLE_IO', `${what}: the agent answered HTTP ${res.statusCode}${message === '' ? '' : `: ${message}`}`)
  }
}
