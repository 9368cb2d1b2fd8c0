import type { Logger } from 'pino'
import type { Metrics } from '../metrics/metrics.js'
import { parseManifest, referencedDescriptors, type Digest } from '../oci/index.js'
import type { BlobStore, StoredBlob } from './blob-store.js'
import type { DiskUsage } from './disk-usage.js'
import type { ScopeIndex } from './scope-index.js'
import type { TagIndex } from './tag-index.js'

export interface StoreBudgetOptions {
  readonly store: BlobStore
  readonly tags: TagIndex
  /** Entries of evicted digests are dropped from it. */
  readonly scopes?: ScopeIndex
  /** Most bytes the store holds. */
  readonly maxBytes?: number
  /** Most the filesystem holding the store may be filled, in percent (needs `disk`). */
  readonly maxDiskPercent?: number
  /** A pass evicts down to this share of the budget, in percent. */
  readonly lowWaterPercent?: number
  /** The filesystem holding the store. */
  readonly disk?: () => Promise<DiskUsage>
  /** Digests being downloaded right now: never evicted. */
  readonly isBusy?: (digest: Digest) => boolean
  readonly metrics: Metrics
  readonly logger: Logger
  readonly now?: () => number
}

export type EvictionReason = 'over budget' | 'disk full' | 'at start'

export interface EvictionPass {
  readonly reason: EvictionReason
  readonly evicted: number
  readonly bytes: number
  readonly heldBytes: number
  readonly budgetBytes: number
}

/**
 * Keeps the store within its byte budget: the smaller of `maxBytes` and what `maxDiskPercent` of the filesystem
 * leaves. A pass runs at start, when a commit takes the store over budget and when a write meets a full disk;
 * it deletes the least recently served blobs (through `store.delete`, whose 'removed' event withdraws them
 * from the peers) until the store is at the low-water mark. Never evicted: pinned blobs, downloads running,
 * and a manifest a known tag points to (or a child of such an index) while any blob it references is held.
 * Blobs being read are not protected: an open stream keeps every byte of a deleted blob (BlobStore.open).
 */
export class StoreBudget {
  readonly #o: StoreBudgetOptions
  readonly #lowWater: number
  readonly #now: () => number
  #unwatch: (() => void) | undefined
  #running: Promise<void> | undefined
  #next: EvictionReason | undefined
  #isClosed = false
  readonly #manifests = new Map<Digest, { refs: Digest[], isIndex: boolean }>()

  constructor (options: StoreBudgetOptions) {
    const { maxBytes, maxDiskPercent, lowWaterPercent = 90 } = options
    if (maxBytes !== undefined && !(maxBytes >= 0)) throw new TypeError(`StoreBudget: maxBytes must be >= 0, got ${maxBytes}`)
    if (maxDiskPercent !== undefined && !(maxDiskPercent > 0 && maxDiskPercent <= 100)) throw new TypeError(`StoreBudget: maxDiskPercent must be in (0, 100], got ${maxDiskPercent}`)
    if (maxDiskPercent !== undefined && options.disk === undefined) throw new TypeError('StoreBudget: maxDiskPercent needs disk')
    if (!(lowWaterPercent > 0 && lowWaterPercent <= 100)) throw new TypeError(`StoreBudget: lowWaterPercent must be in (0, 100], got ${lowWaterPercent}`)
    this.#o = options
    this.#lowWater = lowWaterPercent / 100
    this.#now = options.now ?? Date.now
  }

  /** Watches the store and runs a first pass (in the background). */
  start (): void {
    this.#unwatch ??= this.#o.store.watch((e) => {
      if (e.type === 'added') this.request('over budget')
      else if (e.type === 'full') this.request('disk full')
    })
    this.request('at start')
  }

  /** Stops watching and waits for a running pass. */
  async close (): Promise<void> {
    this.#isClosed = true
    this.#unwatch?.()
    this.#unwatch = undefined
    await this.#running
  }

  /** Asks for a pass; one runs at a time, and requests during it make one more. */
  request (reason: EvictionReason): void {
    if (this.#isClosed) return
    if (this.#running !== undefined) {
      if (this.#next !== 'disk full') this.#next = reason
      return
    }
    this.#running = this.#loop(reason).finally(() => {
      this.#running = undefined
      // Asked for between the loop's last look and here: not lost.
      const next = this.#take()
      if (next !== undefined) this.request(next)
    })
  }

  /** Resolves once no pass runs or is waiting (for tests and shutdown). */
  async settled (): Promise<void> {
    while (this.#running !== undefined) await this.#running
  }

  /** Bytes the store may hold now. */
  async budgetBytes (): Promise<number> {
    const { maxBytes, maxDiskPercent, disk } = this.#o
    let budget = maxBytes ?? Infinity
    if (maxDiskPercent !== undefined && disk !== undefined) {
      const { totalBytes, availableBytes } = await disk()
      // What the store holds plus the room left under the threshold (others' files count against it too).
      const room = totalBytes * maxDiskPercent / 100 - (totalBytes - availableBytes)
      budget = Math.min(budget, Math.max(0, Math.floor(await this.#o.store.totalBytes() + room)))
    }
    return budget
  }

  async #loop (first: EvictionReason): Promise<void> {
    for (let reason: EvictionReason | undefined = first; reason !== undefined && !this.#isClosed; reason = this.#take()) {
      try {
        await this.pass(reason)
      } catch (err) {
        this.#o.logger.warn({ err: (err as Error).message, reason }, 'eviction pass failed')
      }
    }
  }

  #take (): EvictionReason | undefined {
    const next = this.#next
    this.#next = undefined
    return next
  }

  /** One pass: evicts down to the low-water mark if the store is over budget (or the disk was found full). */
  async pass (reason: EvictionReason): Promise<EvictionPass> {
    const { store, metrics, logger } = this.#o
    const started = this.#now()
    const budget = await this.budgetBytes()
    const total = await store.totalBytes()
    metrics.storeBudgetBytes.set(Number.isFinite(budget) ? budget : 0)
    metrics.storeBytes.set(total)
    // Under budget even counting links to containerd's files as ours: nothing to look at (a pass per commit stays cheap).
    if (reason === 'over budget' && total <= budget) return { reason, evicted: 0, bytes: 0, heldBytes: total, budgetBytes: budget }
    const blobs: StoredBlob[] = []
    for await (const b of store.list()) blobs.push(b)
    blobs.sort((a, b) => a.lastAccess - b.lastAccess)
    // A blob whose file containerd also names costs no disk of ours: it counts, and is evicted, only once that name is gone.
    const own = blobs.filter((b) => !b.isShared)
    let held = own.reduce((sum, b) => sum + b.size, 0)
    metrics.storeOwnBytes.set(held)
    metrics.storeLinkedBytes.set(total - held)
    // A full disk means the budget is more than the disk has now: a tenth of what is held goes too.
    const target = Math.floor(this.#lowWater * (reason === 'disk full' ? Math.min(budget, held) : budget))
    if (held <= (reason === 'disk full' ? target : budget)) return { reason, evicted: 0, bytes: 0, heldBytes: held, budgetBytes: budget }
    const present = new Set(blobs.map((b) => b.digest))
    const tagged = await this.#taggedManifests(present)
    const isProtected = (d: Digest): boolean => store.pins.isPinned(d) || this.#o.isBusy?.(d) === true ||
      (tagged.get(d)?.some((ref) => present.has(ref)) ?? false)
    let evicted = 0
    let bytes = 0
    // Until no progress: a tagged manifest becomes evictable once its blobs are gone.
    for (let isProgress = true; isProgress && held > target;) {
      isProgress = false
      for (const b of own) {
        if (held <= target) break
        if (!present.has(b.digest) || isProtected(b.digest)) continue
        present.delete(b.digest)
        if (!await store.delete(b.digest)) continue
        this.#manifests.delete(b.digest)
        await this.#o.scopes?.delete(b.digest)
        held -= b.size
        evicted++
        bytes += b.size
        isProgress = true
      }
    }
    metrics.storeBytes.set(await store.totalBytes())
    metrics.storeOwnBytes.set(held)
    if (evicted > 0) {
      metrics.storeEvictions.inc({ reason }, evicted)
      metrics.storeEvictedBytes.inc({ reason }, bytes)
    }
    const line = { reason, evicted, evictedBytes: bytes, heldBytes: held, budgetBytes: budget, targetBytes: target, ms: this.#now() - started }
    if (held > target) logger.warn(line, 'eviction pass: the rest is pinned, downloading or kept for a tag')
    else logger.info(line, 'eviction pass')
    return { reason, evicted, bytes, heldBytes: held, budgetBytes: budget }
  }

  /** Held manifests known tags point to (and the children of such indexes) → the digests they reference. */
  async #taggedManifests (present: ReadonlySet<Digest>): Promise<Map<Digest, Digest[]>> {
    const out = new Map<Digest, Digest[]>()
    const queue: Digest[] = []
    for await (const { record } of this.#o.tags.entries()) queue.push(record.digest)
    for (let d = queue.pop(); d !== undefined; d = queue.pop()) {
      if (out.has(d) || !present.has(d)) continue
      const m = await this.#manifest(d)
      out.set(d, m.refs)
      if (m.isIndex) queue.push(...m.refs)
    }
    return out
  }

  /** What a held manifest references; remembered (content is immutable), so a pass reads each manifest once. */
  async #manifest (digest: Digest): Promise<{ refs: Digest[], isIndex: boolean }> {
    let m = this.#manifests.get(digest)
    if (m === undefined) {
      m = { refs: [], isIndex: false }
      const bytes = await this.#o.store.read(digest)
      try {
        if (bytes !== undefined) {
          const parsed = parseManifest(bytes)
          m = { refs: referencedDescriptors(parsed).map((r) => r.digest), isIndex: parsed.kind === 'index' }
        }
      } catch {
        // Not a manifest this parser reads: it protects nothing.
      }
      this.#manifests.set(digest, m)
    }
    return m
  }
}
