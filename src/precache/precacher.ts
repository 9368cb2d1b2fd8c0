import type { Logger } from 'pino'
import { describeError } from '../errors/one-line.js'
import { matchesLabels } from '../kube/labels.js'
import type { Digest, Platform } from '../oci/index.js'
import type { PrecachePhase, PrecacheSetStatus } from './precache-status.js'
import type { PrecacheImage, PrecacheSpec } from './precache-spec.js'
import type { HeldImage, PrecacheTarget, WantedImage } from './precache-target.js'

/** A tag resolved through the agent: the digest, and when the upstream last confirmed it (epoch ms; absent: not confirmed, only held). */
export interface ResolvedImageTag {
  readonly digest: Digest
  readonly confirmedAt?: number
}

export interface PrecacherOptions {
  readonly target: PrecacheTarget
  /** Resolves a tag through the agent (upstream, peers, or its last good record when both are out of reach). */
  readonly resolveTag: (image: WantedImage, signal: AbortSignal) => Promise<ResolvedImageTag>
  readonly logger: Logger
  /** Images pulled at once; default 2. */
  readonly concurrency?: number
  /** Bound on one image's whole sync (resolve, pull, pin); default 30 minutes. */
  readonly pullTimeoutMs?: number
  /** Retry delays after a failure: doubling from `initialMs` up to `maxMs`, with jitter. */
  readonly backoff?: { readonly initialMs: number, readonly maxMs: number }
  /** The first syncs start within this (spread so that nodes starting together do not ask at one instant). */
  readonly startJitterMs?: number
  readonly now?: () => number
  readonly random?: () => number
}

interface Entry {
  readonly image: WantedImage
  sets: string[]
  refreshMs: number
  phase: PrecachePhase
  digest?: Digest
  isPinned: boolean
  lastConfirmed?: number
  bytes?: number
  error?: string
  failures: number
  timer?: NodeJS.Timeout
  state: 'idle' | 'queued' | 'running'
  /** Asked again while running: sync once more when done. */
  again: boolean
}

/**
 * Keeps the images of the sets that select this node on the target: pulled (after a check that they are not
 * there), pinned, re-resolved every `refresh` (pulling only a changed digest), pulled again at once when
 * removed, and unpinned when no set wants them any more. With the upstream out of reach nothing is removed.
 */
export class Precacher {
  readonly #o: Required<Omit<PrecacherOptions, 'backoff'>> & { backoff: { initialMs: number, maxMs: number } }
  readonly #entries = new Map<string, Entry>()
  readonly #queue: string[] = []
  readonly #closed = new AbortController()
  #running = 0
  #spec: PrecacheSpec | undefined
  #labels: Readonly<Record<string, string>> | undefined
  #unwatch: (() => void) | undefined
  #prune: Promise<void> = Promise.resolve()
  #isStarted = false

  constructor (options: PrecacherOptions) {
    this.#o = {
      concurrency: 2, pullTimeoutMs: 30 * 60_000, startJitterMs: 1000, now: Date.now, random: Math.random,
      ...options,
      backoff: options.backoff ?? { initialMs: 5000, maxMs: 5 * 60_000 },
    }
    if (!(this.#o.concurrency >= 1)) throw new TypeError(`Precacher: concurrency must be at least 1, got ${this.#o.concurrency}`)
  }

  get target (): PrecacheTarget {
    return this.#o.target
  }

  /** Starts listening for removed images and reconciles what is known so far. */
  start (): void {
    if (this.#isStarted) return
    this.#isStarted = true
    this.#unwatch = this.#o.target.watchRemoved?.((key) => {
      if (!this.#entries.has(key)) return
      this.#o.logger.info({ image: key }, 'pre-cached image removed from the node; pulling it again')
      this.#schedule(key, 0)
    })
    this.#reconcile()
  }

  /** The sets in force (the file parsed); undefined while none were ever read. */
  setSpec (spec: PrecacheSpec): void {
    this.#spec = spec
    this.#reconcile()
  }

  /** The node's labels; undefined while they are not known (sets with a nodeSelector then wait). */
  setNodeLabels (labels: Readonly<Record<string, string>> | undefined): void {
    if (labels !== undefined && this.#labels !== undefined && sameLabels(labels, this.#labels)) return
    this.#labels = labels
    this.#reconcile()
  }

  get nodeLabels (): Readonly<Record<string, string>> | undefined {
    return this.#labels
  }

  /** Each declared set with its images' state; sets that do not select this node list none. */
  sets (): PrecacheSetStatus[] {
    const now = this.#o.now()
    return (this.#spec?.sets ?? []).map((set) => {
      const matches = this.#matches(set.nodeSelector) === true
      return {
        name: set.name, matches, refreshSeconds: Math.round(set.refreshMs / 1000),
        images: !matches ? [] : set.images.map((image) => this.#imageStatus(image, now)),
      }
    })
  }

  /** Images per (set, phase), for the metric. */
  counts (): Array<{ set: string, phase: PrecachePhase, count: number }> {
    const out: Array<{ set: string, phase: PrecachePhase, count: number }> = []
    for (const set of this.sets()) {
      const byPhase = new Map<PrecachePhase, number>()
      for (const image of set.images) byPhase.set(image.phase, (byPhase.get(image.phase) ?? 0) + 1)
      for (const [phase, count] of byPhase) out.push({ set: set.name, phase, count })
    }
    return out
  }

  /** Stops every timer and running sync; pins stay as they are (a restart must not unpin). */
  async close (): Promise<void> {
    this.#closed.abort(new Error('the pre-cache is stopping'))
    this.#unwatch?.()
    for (const entry of this.#entries.values()) clearTimeout(entry.timer)
    this.#queue.length = 0
    await this.#prune
  }

  #imageStatus (image: PrecacheImage, now: number): PrecacheSetStatus['images'][number] {
    const e = image.error === undefined ? this.#entries.get(image.key) : undefined
    if (e === undefined) {
      return { ref: image.key, digest: null, phase: image.error === undefined ? 'Pending' : 'Failed', pinned: false, lastConfirmed: null, bytes: null, error: image.error ?? null }
    }
    return {
      ref: image.key, digest: e.digest ?? null, phase: e.phase, pinned: e.isPinned,
      lastConfirmed: e.lastConfirmed === undefined ? null : new Date(Math.min(e.lastConfirmed, now)).toISOString(),
      bytes: e.bytes ?? null, error: e.error ?? null,
    }
  }

  /** true, false, or undefined while the node's labels are not known. */
  #matches (selector: Readonly<Record<string, string>>): boolean | undefined {
    if (Object.keys(selector).length === 0) return true
    return this.#labels === undefined ? undefined : matchesLabels(selector, this.#labels)
  }

  #reconcile (): void {
    const spec = this.#spec
    if (!this.#isStarted || spec === undefined || this.#closed.signal.aborted) return
    let isComplete = true
    const wanted = new Map<string, { image: WantedImage, sets: string[], refreshMs: number, platforms: Platform[] }>()
    for (const set of spec.sets) {
      const matches = this.#matches(set.nodeSelector)
      if (matches === undefined) isComplete = false
      if (matches !== true) continue
      for (const image of set.images) {
        if (image.ref === undefined) continue
        const w = wanted.get(image.key)
        if (w === undefined) {
          const platforms = [...set.platforms]
          wanted.set(image.key, { image: { key: image.key, ref: image.ref, platforms }, sets: [set.name], refreshMs: set.refreshMs, platforms })
        } else {
          w.sets.push(set.name)
          w.refreshMs = Math.min(w.refreshMs, set.refreshMs)
          w.platforms.push(...set.platforms)
        }
      }
    }
    for (const [key, w] of wanted) {
      const e = this.#entries.get(key)
      if (e === undefined) {
        this.#entries.set(key, { image: w.image, sets: w.sets, refreshMs: w.refreshMs, phase: 'Pending', isPinned: false, failures: 0, state: 'idle', again: false })
        this.#schedule(key, this.#o.random() * this.#o.startJitterMs)
      } else if (e.sets.join(',') !== w.sets.join(',') || e.refreshMs !== w.refreshMs) {
        e.sets = w.sets
        e.refreshMs = w.refreshMs
        this.#schedule(key, 0)
      }
    }
    for (const [key, e] of this.#entries) {
      if (wanted.has(key)) continue
      clearTimeout(e.timer)
      this.#entries.delete(key)
    }
    // Only with every set's match known: an unknown label must not unpin what a set may still want.
    if (isComplete) this.#prunePins(new Set(wanted.keys()))
  }

  #prunePins (wanted: ReadonlySet<string>): void {
    this.#prune = this.#prune.then(async () => {
      const signal = AbortSignal.any([this.#closed.signal, AbortSignal.timeout(60_000)])
      for (const key of await this.#o.target.pinned(signal)) {
        if (wanted.has(key) || this.#entries.has(key)) continue
        await this.#o.target.unpin(key, signal)
        this.#o.logger.info({ image: key }, 'no pre-cache set wants this image any more: flotilla\'s pin removed')
      }
    }).catch((err: unknown) => {
      if (!this.#closed.signal.aborted) this.#o.logger.warn({ err }, 'removing pre-cache pins no set wants failed; trying again at the next change')
    })
  }

  #schedule (key: string, delayMs: number): void {
    const e = this.#entries.get(key)
    if (e === undefined || this.#closed.signal.aborted) return
    clearTimeout(e.timer)
    e.timer = setTimeout(() => {
      e.timer = undefined
      this.#enqueue(key)
    }, Math.max(0, delayMs))
    e.timer.unref()
  }

  #enqueue (key: string): void {
    const e = this.#entries.get(key)
    if (e === undefined) return
    if (e.state === 'running') {
      e.again = true
      return
    }
    if (e.state === 'queued') return
    e.state = 'queued'
    this.#queue.push(key)
    this.#pump()
  }

  #pump (): void {
    while (this.#running < this.#o.concurrency && this.#queue.length > 0) {
      const key = this.#queue.shift()
      const e = key === undefined ? undefined : this.#entries.get(key)
      if (key === undefined || e === undefined || e.state !== 'queued') continue
      e.state = 'running'
      this.#running++
      void this.#sync(e).finally(() => {
        this.#running--
        e.state = 'idle'
        if (e.again && this.#entries.get(key) === e) {
          e.again = false
          this.#enqueue(key)
        }
        this.#pump()
      })
    }
  }

  async #sync (e: Entry): Promise<void> {
    const { target, logger } = this.#o
    const { key, ref } = e.image
    const signal = AbortSignal.any([this.#closed.signal, AbortSignal.timeout(this.#o.pullTimeoutMs)])
    let held: HeldImage | undefined
    try {
      let wanted = ref.digest
      let notConfirmed: string | undefined
      if (wanted === undefined) {
        try {
          const resolved = await this.#o.resolveTag(e.image, signal)
          wanted = resolved.digest
          if (resolved.confirmedAt !== undefined) e.lastConfirmed = Math.max(e.lastConfirmed ?? 0, resolved.confirmedAt)
        } catch (err) {
          if (signal.aborted) throw err
          notConfirmed = `tag not confirmed: ${describeError(err)}`
        }
      }
      held = await target.inspect(e.image, signal)
      if (held === undefined || (wanted !== undefined && held.digest !== wanted)) {
        const from = held?.digest
        e.phase = 'Pulling'
        logger.info({ image: key, digest: wanted, replaces: from }, from === undefined ? 'pre-caching image' : 'pre-cached tag moved: pulling the new image')
        held = await target.pull(e.image, wanted, signal)
      }
      held = await target.pin(e.image, e.sets, signal)
      if (this.#entries.get(key) !== e) {
        // No set wants it any more (the file changed while it was pulled): leave no pin behind.
        await target.unpin(key, signal)
        return
      }
      if (ref.digest !== undefined) e.lastConfirmed ??= this.#o.now()
      if (e.phase !== 'Ready') logger.info({ image: key, digest: held.digest, sets: e.sets }, 'pre-cached image ready')
      Object.assign(e, { phase: 'Ready', digest: held.digest, isPinned: held.isPinned, bytes: held.bytes, error: notConfirmed, failures: 0 })
      this.#schedule(key, e.refreshMs * (0.9 + 0.2 * this.#o.random()))
    } catch (err) {
      if (this.#closed.signal.aborted || this.#entries.get(key) !== e) return
      e.failures++
      e.error = describeError(err)
      // An image still held stays Ready (a refresh failed); one that is not held has failed.
      const stillHeld = held ?? await target.inspect(e.image, AbortSignal.timeout(5000)).catch(() => undefined)
      e.phase = stillHeld === undefined ? 'Failed' : 'Ready'
      if (stillHeld !== undefined) Object.assign(e, { digest: stillHeld.digest, isPinned: stillHeld.isPinned, bytes: stillHeld.bytes ?? e.bytes })
      const { initialMs, maxMs } = this.#o.backoff
      const delay = Math.min(maxMs, initialMs * 2 ** (e.failures - 1)) * (0.8 + 0.4 * this.#o.random())
      logger.warn({ image: key, failures: e.failures, retryInMs: Math.round(delay), err: e.error }, 'pre-caching image failed')
      this.#schedule(key, delay)
    }
  }
}

function sameLabels (a: Readonly<Record<string, string>>, b: Readonly<Record<string, string>>): boolean {
  const ka = Object.keys(a)
  return ka.length === Object.keys(b).length && ka.every((k) => a[k] === b[k])
}
