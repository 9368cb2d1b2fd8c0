import type { Readable } from 'node:stream'
import { Agent, request } from 'undici'
import { hasCode } from '../errors/flotilla-error.js'
import { errorBodyMessage } from '../http/error-body.js'
import { readLimited } from '../http/read-limited.js'
import { MAX_MANIFEST_BYTES, type Digest } from '../oci/index.js'
import type { ManifestBody, Upstream } from '../upstream/upstream.js'
import { digestOf } from '../mirror/manifest-service.js'
import { BundleError } from './bundle-error.js'

/** Where `flotilla save` reads images from: the upstream registries, or a running agent (`--via`). */
export interface ImageSource {
  manifest (registry: string, repository: string, reference: string, accept: string, signal: AbortSignal): Promise<ManifestBody>
  blob (registry: string, repository: string, digest: Digest, signal: AbortSignal): Promise<Readable>
  /** The OCI referrers index of a manifest, or undefined when the registry has none or no referrers API. */
  referrers (registry: string, repository: string, digest: Digest, signal: AbortSignal): Promise<Buffer | undefined>
  close (): Promise<void>
}

/** The configured upstreams (with their credentials), straight. */
export function upstreamImageSource (upstream: Upstream): ImageSource {
  return {
    manifest: async (registry, repository, reference, accept, signal) => await upstream.getManifest(registry, repository, reference, accept, signal),
    blob: async (registry, repository, digest, signal) => (await upstream.getBlob(registry, repository, digest, undefined, signal)).body,
    referrers: async (registry, repository, digest, signal) => {
      try {
        const r = await upstream.passThrough(registry, repository, `referrers/${digest}`, '', 'application/vnd.oci.image.index.v1+json', signal)
        return r.status === 200 ? r.body : undefined
      } catch (err) {
        if (hasCode(err, 'ERR_UPSTREAM_NOT_FOUND')) return undefined
        throw err
      }
    },
    close: async () => { await upstream.close() },
  }
}

/** A running flotilla agent (`--via URL`): every registry through it, named with `?ns=`. */
export function agentImageSource (base: string): ImageSource {
  const url = new URL(base)
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new BundleError('ERR_BUNDLE_IO', `--via must be an http(s) URL, got ${base}`)
  const root = url.toString().replace(/\/+$/, '')
  const agent = new Agent({ connect: { timeout: 10_000 }, headersTimeout: 60_000, bodyTimeout: 60_000 })
  const get = async (registry: string, repository: string, path: string, accept: string | undefined, signal: AbortSignal): Promise<{ status: number, headers: Record<string, string | string[] | undefined>, body: Readable }> => {
    const res = await request(`${root}/v2/${repository}/${path}?ns=${encodeURIComponent(registry)}`, {
      dispatcher: agent, signal, headers: accept === undefined ? {} : { accept },
    })
    return { status: res.statusCode, headers: res.headers, body: res.body as unknown as Readable }
  }
  const fail = async (what: string, r: { status: number, body: Readable }): Promise<never> => {
    const message = await errorBodyMessage(r.body)
    throw new BundleError('ERR_BUNDLE_IO', `${what} through ${root}: HTTP ${r.status}${message === '' ? '' : `: ${message}`}`)
  }
  return {
    manifest: async (registry, repository, reference, accept, signal) => {
      const r = await get(registry, repository, `manifests/${reference}`, accept, signal)
      if (r.status !== 200) return await fail(`manifest ${registry}/${repository}:${reference}`, r)
      const bytes = await readLimited(r.body, MAX_MANIFEST_BYTES)
      if (bytes === undefined) throw new BundleError('ERR_BUNDLE_IO', `manifest ${registry}/${repository}:${reference} is larger than ${MAX_MANIFEST_BYTES} bytes`)
      const mediaType = String(r.headers['content-type'] ?? '').split(';')[0]?.trim() ?? ''
      return { bytes, digest: digestOf(bytes), mediaType, size: bytes.byteLength }
    },
    blob: async (registry, repository, digest, signal) => {
      const r = await get(registry, repository, `blobs/${digest}`, undefined, signal)
      if (r.status !== 200) return await fail(`blob ${digest}`, r)
      return r.body
    },
    referrers: async (registry, repository, digest, signal) => {
      const r = await get(registry, repository, `referrers/${digest}`, 'application/vnd.oci.image.index.v1+json', signal)
      if (r.status !== 200) {
        r.body.resume()
        return undefined
      }
      return await readLimited(r.body, MAX_MANIFEST_BYTES)
    },
    close: async () => { await agent.close() },
  }
}
