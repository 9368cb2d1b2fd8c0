import type { Digest } from '../../../src/oci/index.js'
import type { HeldImage, PrecacheTarget, WantedImage } from '../../../src/precache/precache-target.js'

interface Record {
  digest: Digest
  isPinned: boolean
  /** The pin is flotilla's (not someone else's). */
  isOwnPin: boolean
  sets?: string
}

/**
 * An in-memory PrecacheTarget: images by name, with what the registry would give for each name when pulled
 * (`registry`), a switch that makes pulls fail, and a log of every call.
 */
export class MemoryTarget implements PrecacheTarget {
  readonly mode = 'containerd'
  readonly images = new Map<string, Record>()
  /** What a pull of each name gets. */
  readonly registry = new Map<string, Digest>()
  readonly calls: string[] = []
  failPulls: string | undefined
  #removed: ((key: string) => void) | undefined

  async inspect (image: WantedImage): Promise<HeldImage | undefined> {
    this.calls.push(`inspect ${image.key}`)
    const r = this.images.get(image.key)
    return r === undefined ? undefined : { digest: r.digest, isPinned: r.isPinned, bytes: 100 }
  }

  async pull (image: WantedImage): Promise<HeldImage> {
    this.calls.push(`pull ${image.key}`)
    if (this.failPulls !== undefined) throw new Error(this.failPulls)
    const digest = this.registry.get(image.key) ?? image.ref.digest
    if (digest === undefined) throw new Error(`${image.key}: not found`)
    const old = this.images.get(image.key)
    this.images.set(image.key, { digest, isPinned: old?.isPinned ?? false, isOwnPin: old?.isOwnPin ?? false, ...(old?.sets === undefined ? {} : { sets: old.sets }) })
    return { digest, isPinned: old?.isPinned ?? false }
  }

  async pin (image: WantedImage, sets: readonly string[]): Promise<HeldImage> {
    this.calls.push(`pin ${image.key} ${sets.join(',')}`)
    const r = this.images.get(image.key)
    if (r === undefined) throw new Error(`no ${image.key} to pin`)
    if (!r.isPinned) Object.assign(r, { isPinned: true, isOwnPin: true })
    r.sets = sets.join(',')
    return { digest: r.digest, isPinned: true, bytes: 100 }
  }

  async pinned (): Promise<string[]> {
    return [...this.images].filter(([, r]) => r.sets !== undefined).map(([k]) => k)
  }

  async unpin (key: string): Promise<void> {
    this.calls.push(`unpin ${key}`)
    const r = this.images.get(key)
    if (r === undefined) return
    delete r.sets
    if (r.isOwnPin) Object.assign(r, { isPinned: false, isOwnPin: false })
  }

  watchRemoved (listener: (key: string) => void): () => void {
    this.#removed = listener
    return () => { this.#removed = undefined }
  }

  /** What `crictl rmi` or the kubelet's GC does. */
  remove (key: string): void {
    this.images.delete(key)
    this.#removed?.(key)
  }
}
