import type { Digest, ImageReference, Platform } from '../oci/index.js'

/** An image the pre-cache wants on this node. */
export interface WantedImage {
  /** The name the image is held under: `registry/repository:tag`, or `registry/repository@digest`. */
  readonly key: string
  readonly ref: ImageReference
  /** Platforms to warm in the store-only mode; empty: the node's own. */
  readonly platforms: readonly Platform[]
}

/** What a target holds under an image's name. */
export interface HeldImage {
  /** The manifest or index digest. */
  readonly digest: Digest
  /** Pinned against garbage collection (by flotilla or by someone else). */
  readonly isPinned: boolean
  readonly bytes?: number
}

/** Whether the target's garbage collector honours the pin. */
export interface PinSupport {
  readonly honoured: boolean | null
  readonly containerdVersion: string | null
  readonly note: string | null
}

/**
 * Where pre-cached images go: the node's containerd (pulled through its CRI, pinned with labels) or the
 * agent's own store (warmed, pinned in the store). Every call is bounded by its signal.
 */
export interface PrecacheTarget {
  readonly mode: 'containerd' | 'store'
  /** What is held under `image.key`, or undefined. */
  inspect (image: WantedImage, signal: AbortSignal): Promise<HeldImage | undefined>
  /** Pulls the image; `digest` is what its tag resolved to, when known. */
  pull (image: WantedImage, digest: Digest | undefined, signal: AbortSignal): Promise<HeldImage>
  /** Pins what is held under `image.key` for these sets (the list replaces the previous one). */
  pin (image: WantedImage, sets: readonly string[], signal: AbortSignal): Promise<HeldImage>
  /** Names of the images flotilla has pinned. */
  pinned (signal: AbortSignal): Promise<string[]>
  /** Takes flotilla's pin off the image named `key`; a pin flotilla did not set stays. */
  unpin (key: string, signal: AbortSignal): Promise<void>
  /** Hears the names of images removed from the target (a kubelet GC, `crictl rmi`); returns an unsubscribe. */
  watchRemoved? (listener: (key: string) => void): () => void
  pinSupport? (signal: AbortSignal): Promise<PinSupport>
}
