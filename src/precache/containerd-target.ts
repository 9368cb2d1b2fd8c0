import type { Logger } from 'pino'
import type { ContainerdClient, ContainerdImage, EventSubscription } from '../containerd/containerd-client.js'
import { parseContainerdEvent } from '../containerd/containerd-events.js'
import type { CriImageClient } from '../containerd/cri-image-client.js'
import { parseDigest, type Digest } from '../oci/index.js'
import type { HeldImage, PinSupport, PrecacheTarget, WantedImage } from './precache-target.js'

/** containerd's CRI reports an image with this label pinned, and the kubelet's image GC leaves it. */
export const PINNED_LABEL = 'io.cri-containerd.pinned'
export const PINNED_VALUE = 'pinned'
/** The pre-cache sets that want the image (comma-separated): marks an image flotilla pre-caches. */
export const SETS_LABEL = 'dev.flotilla.precache.sets'
/** Set when flotilla set PINNED_LABEL, so that only such pins are ever removed. */
export const OWN_PIN_LABEL = 'dev.flotilla.precache.pinned'

export interface ContainerdTargetOptions {
  readonly client: ContainerdClient
  readonly cri: CriImageClient
  readonly logger: Logger
}

/**
 * Pre-caches into the node's containerd: pulls through the CRI image service (so containerd's hosts.toml
 * sends the pull to this agent, and from there to peers or the upstream), pins by labelling the image record
 * the pods name (`registry/repo:tag` or `registry/repo@digest`). Only that record carries the pin: when a tag
 * moves, the old image keeps no pin of flotilla's.
 */
export class ContainerdTarget implements PrecacheTarget {
  readonly mode = 'containerd'
  readonly #o: ContainerdTargetOptions
  /** What CRI's ImageStatus said of the last image flotilla pinned: the evidence that beats the version. */
  #criReportsPin: boolean | undefined

  constructor (options: ContainerdTargetOptions) {
    this.#o = options
  }

  async inspect (image: WantedImage, signal: AbortSignal): Promise<HeldImage | undefined> {
    const record = await this.#o.client.getImage(image.key, signal)
    if (record === undefined) return undefined
    return await this.#held(image, record, signal)
  }

  async pull (image: WantedImage, digest: Digest | undefined, signal: AbortSignal): Promise<HeldImage> {
    await this.#o.cri.pullImage(image.key, { signal, timeoutMs: 24 * 60 * 60_000 })
    const held = await this.inspect(image, signal)
    if (held === undefined) throw new Error(`containerd pulled ${image.key} but holds no image by that name`)
    if (digest !== undefined && held.digest !== digest) {
      this.#o.logger.info({ image: image.key, resolved: digest, pulled: held.digest }, 'the tag moved again while it was pulled')
    }
    return held
  }

  async pin (image: WantedImage, sets: readonly string[], signal: AbortSignal): Promise<HeldImage> {
    const record = await this.#o.client.getImage(image.key, signal)
    if (record === undefined) throw new Error(`containerd holds no image ${image.key} to pin`)
    const labels = record.labels
    const isForeignPin = labels[PINNED_LABEL] === PINNED_VALUE && labels[OWN_PIN_LABEL] !== 'true'
    const changes: Record<string, string> = { [SETS_LABEL]: [...sets].sort().join(',') }
    if (!isForeignPin) Object.assign(changes, { [PINNED_LABEL]: PINNED_VALUE, [OWN_PIN_LABEL]: 'true' })
    const unchanged = Object.entries(changes).every(([k, v]) => labels[k] === v)
    const updated = unchanged ? record : await this.#o.client.updateImageLabels(image.key, changes, signal)
    if (updated === undefined) throw new Error(`containerd's image ${image.key} went away while it was pinned`)
    return await this.#held(image, updated, signal)
  }

  async pinned (signal: AbortSignal): Promise<string[]> {
    const images = await this.#o.client.listImages([], signal)
    return images.filter((i) => i.labels[SETS_LABEL] !== undefined).map((i) => i.name)
  }

  async unpin (key: string, signal: AbortSignal): Promise<void> {
    const record = await this.#o.client.getImage(key, signal)
    if (record === undefined) return
    const isOwnPin = record.labels[OWN_PIN_LABEL] === 'true'
    await this.#o.client.updateImageLabels(key, {
      [SETS_LABEL]: undefined,
      ...(isOwnPin ? { [PINNED_LABEL]: undefined, [OWN_PIN_LABEL]: undefined } : {}),
    }, signal)
  }

  watchRemoved (listener: (key: string) => void): () => void {
    const ns = JSON.stringify(this.#o.client.namespace)
    const subscription: EventSubscription = this.#o.client.subscribe([`namespace==${ns},topic=="/images/delete"`], {
      onEvent: (envelope) => {
        const event = parseContainerdEvent(envelope)
        if (event?.kind === 'image-delete' && event.namespace === this.#o.client.namespace) listener(event.name)
      },
    })
    return () => { subscription.close() }
  }

  /**
   * containerd reports the pin to the kubelet from 1.6.25 and 1.7.10 (and the kubelet honours it from
   * 1.28.2): older ones garbage-collect a pinned image like any other. What CRI's ImageStatus said of a
   * pinned image, once one was seen, beats the version.
   */
  async pinSupport (signal: AbortSignal): Promise<PinSupport> {
    const { version } = await this.#o.client.version(signal)
    const honoured = this.#criReportsPin ?? reportsPins(version) ?? null
    return {
      honoured,
      containerdVersion: version,
      note: honoured === false
        ? `containerd ${version} does not report pins to the kubelet (1.6.25, 1.7.10 or later does): a pre-cached image the kubelet's GC removes is pulled again at once`
        : honoured === true ? 'the kubelet honours the pin from 1.28.2' : null,
    }
  }

  async #held (image: WantedImage, record: ContainerdImage, signal: AbortSignal): Promise<HeldImage> {
    const status = await this.#o.cri.imageStatus(image.key, signal).catch(() => undefined)
    if (status !== undefined && record.labels[PINNED_LABEL] === PINNED_VALUE) this.#criReportsPin = status.pinned
    return {
      digest: parseDigest(record.target.digest).digest,
      isPinned: record.labels[PINNED_LABEL] === PINNED_VALUE,
      ...(status === undefined ? {} : { bytes: status.size }),
    }
  }
}

/** Whether a containerd version reports `io.cri-containerd.pinned` in CRI ImageStatus; undefined when unknown. */
export function reportsPins (version: string): boolean | undefined {
  const m = /^v?(\d+)\.(\d+)\.(\d+)/.exec(version)
  if (m === null) return undefined
  const [major, minor, patch] = [Number(m[1]), Number(m[2]), Number(m[3])]
  if (major !== 1) return major > 1
  if (minor === 6) return patch >= 25
  if (minor === 7) return patch >= 10
  return minor > 7
}
