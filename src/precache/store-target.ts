import { Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import type { Mirror, MirrorRequest } from '../mirror/mirror.js'
import { DEFAULT_MANIFEST_ACCEPT, formatPlatform, includedChildren, normalizePlatform, parseManifest, type Digest, type ManifestRef, type ParsedManifest, type Platform } from '../oci/index.js'
import type { BlobStore } from '../store/blob-store.js'
import type { HeldImage, PinSupport, PrecacheTarget, WantedImage } from './precache-target.js'

const ARCHITECTURES: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' }

/** The platform this process runs on, as OCI names it. */
export function nodePlatform (): Platform {
  return normalizePlatform({ os: 'linux', architecture: ARCHITECTURES[process.arch] ?? process.arch })
}

interface Warmed {
  readonly digest: Digest
  readonly digests: readonly Digest[]
  readonly bytes: number
}

export interface StoreTargetOptions {
  readonly mirror: Mirror
  readonly store: BlobStore
  /** Platforms warmed when a set names none; default the node's. */
  readonly defaultPlatforms?: readonly Platform[]
}

/**
 * Pre-caches into the agent's own store (no containerd: the single-node default, a central mirror): the
 * image's manifests, configs and layers of the wanted platforms are fetched through the mirror (peers,
 * upstream) and pinned against eviction. What was warmed is known in memory: after a restart each image is
 * walked again, which costs one lookup per blob already held.
 */
export class StoreTarget implements PrecacheTarget {
  readonly mode = 'store'
  readonly #o: StoreTargetOptions
  readonly #warmed = new Map<string, Warmed>()

  constructor (options: StoreTargetOptions) {
    this.#o = options
  }

  async inspect (image: WantedImage): Promise<HeldImage | undefined> {
    const w = this.#warmed.get(image.key)
    if (w === undefined) return undefined
    for (const d of w.digests) {
      if (await this.#o.store.stat(d) === undefined) return undefined
    }
    return { digest: w.digest, isPinned: w.digests.every((d) => this.#o.store.pins.isPinned(d)), bytes: w.bytes }
  }

  async pull (image: WantedImage, digest: Digest | undefined, signal: AbortSignal): Promise<HeldImage> {
    const { ref } = image
    const req: MirrorRequest = { registry: ref.registry, repository: ref.repository, signal }
    const reason = pinReason(image.key)
    const digests: Digest[] = []
    let bytes = 0
    // Each piece is pinned before it is fetched, so that an eviction pass cannot take it in between.
    const keep = (d: Digest, size: number): void => {
      this.#o.store.pins.pin(d, reason)
      digests.push(d)
      bytes += size
    }
    const exact = digest ?? ref.digest
    const topRef: ManifestRef | undefined = exact !== undefined ? { kind: 'digest', digest: exact } : ref.tag === undefined ? undefined : { kind: 'tag', tag: ref.tag }
    if (topRef === undefined) throw new Error(`${image.key} names neither a tag nor a digest`)
    const top = await this.#o.mirror.getManifest(req, topRef, DEFAULT_MANIFEST_ACCEPT)
    keep(top.digest, top.size)
    const manifest = parseManifest(top.body, top.mediaType)
    const children = includedChildren(manifest, this.#platforms(image).map(formatPlatform))
    if (manifest.kind === 'index' && children.length === 0) throw new Error(`${image.key} has no manifest for ${this.#platforms(image).map((p) => `${p.os}/${p.architecture}`).join(', ')}`)
    const manifests: ParsedManifest[] = manifest.kind === 'index' ? [] : [manifest]
    for (const child of children) {
      const got = await this.#o.mirror.getManifest(req, { kind: 'digest', digest: child.digest }, child.mediaType)
      keep(got.digest, got.size)
      manifests.push(parseManifest(got.body, got.mediaType))
    }
    for (const m of manifests) {
      if (m.kind !== 'manifest') continue
      for (const blob of [m.config, ...m.layers]) {
        keep(blob.digest, blob.size)
        if (await this.#o.store.stat(blob.digest) !== undefined) continue
        const b = await this.#o.mirror.getBlob(req, blob.digest)
        // Reading it to the end is what keeps it: the mirror verifies and stores what it streams.
        await pipeline(await b.open(), new Writable({ write: (_c, _e, done) => { done() } }), { signal })
      }
    }
    const previous = this.#warmed.get(image.key)
    this.#warmed.set(image.key, { digest: top.digest, digests, bytes })
    // A tag that moved: what only the old image needed is no longer held for it.
    if (previous !== undefined) for (const d of previous.digests) if (!digests.includes(d)) this.#o.store.pins.unpin(d, reason)
    return { digest: top.digest, isPinned: true, bytes }
  }

  async pin (image: WantedImage): Promise<HeldImage> {
    const held = await this.inspect(image)
    if (held === undefined) throw new Error(`the store does not hold ${image.key} to pin`)
    return held
  }

  async pinned (): Promise<string[]> {
    return [...this.#warmed.keys()]
  }

  async unpin (key: string): Promise<void> {
    const w = this.#warmed.get(key)
    if (w === undefined) return
    for (const d of w.digests) this.#o.store.pins.unpin(d, pinReason(key))
    this.#warmed.delete(key)
  }

  /** The store's own pins: its eviction never takes a pinned blob. */
  async pinSupport (): Promise<PinSupport> {
    return { honoured: true, containerdVersion: null, note: 'pinned in the agent\'s store: eviction never takes a pre-cached blob' }
  }

  #platforms (image: WantedImage): readonly Platform[] {
    return image.platforms.length > 0 ? image.platforms : this.#o.defaultPlatforms ?? [nodePlatform()]
  }
}

function pinReason (key: string): string {
  return `precache:${key}`
}
