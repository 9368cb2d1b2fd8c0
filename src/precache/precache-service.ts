import type { Logger } from 'pino'
import type { NodeApiOptions } from '../kube/node-labels.js'
import { NodeLabelsSource } from './node-labels-source.js'
import { WatchedFile } from '../config/watched-file.js'
import { parsePrecacheSpec, type PrecacheSpec } from './precache-spec.js'
import type { PrecachePhase, PrecacheStatus } from './precache-status.js'
import type { PinSupport, PrecacheTarget } from './precache-target.js'
import { Precacher, type PrecacherOptions } from './precacher.js'

export interface PrecacheServiceOptions extends Omit<PrecacherOptions, 'target' | 'logger'> {
  readonly file: string
  readonly target: PrecacheTarget
  readonly logger: Logger
  readonly configuredLabels?: Readonly<Record<string, string>>
  /** The node object to read labels from (in a cluster, when none are configured). */
  readonly node?: NodeApiOptions
  readonly nodeLabelsIntervalMs?: number
  readonly filePollMs?: number
}

/**
 * The pre-cache of one agent: its file, the node's labels and the reconciler that keeps the selected images
 * on the target; `status()` is what `GET /status/precache` answers.
 */
export class PrecacheService {
  readonly #precacher: Precacher
  readonly #file: WatchedFile<PrecacheSpec>
  readonly #labels: NodeLabelsSource
  readonly #target: PrecacheTarget
  readonly #logger: Logger
  #pin: PinSupport = { honoured: null, containerdVersion: null, note: null }
  #pinTimer: NodeJS.Timeout | undefined

  constructor (o: PrecacheServiceOptions) {
    const logger = o.logger
    this.#logger = logger
    this.#target = o.target
    this.#precacher = new Precacher({ ...o, logger })
    this.#file = new WatchedFile({
      path: o.file, logger, what: 'pre-cache file', parse: parsePrecacheSpec, onValue: (spec) => { this.#precacher.setSpec(spec) },
      describe: (spec) => ({ sets: spec.sets.map((s) => s.name) }), ...(o.filePollMs === undefined ? {} : { pollMs: o.filePollMs }),
    })
    this.#labels = new NodeLabelsSource({
      logger, onLabels: (labels) => { this.#precacher.setNodeLabels(labels) },
      ...(o.configuredLabels === undefined ? {} : { configured: o.configuredLabels }),
      ...(o.node === undefined ? {} : { node: o.node }),
      ...(o.nodeLabelsIntervalMs === undefined ? {} : { intervalMs: o.nodeLabelsIntervalMs }),
    })
  }

  /** Reads the file and the labels, then starts pulling; call once the registry API listens (pulls come back to it). */
  async start (): Promise<void> {
    await Promise.all([this.#file.start(), this.#labels.start()])
    this.#precacher.start()
    await this.#checkPins()
    // Again later: once an image is pinned, what containerd reports of it is better evidence than its version.
    this.#pinTimer = setInterval(() => { void this.#checkPins() }, 60_000)
    this.#pinTimer.unref()
  }

  async #checkPins (): Promise<void> {
    const support = await this.#target.pinSupport?.(AbortSignal.timeout(5000)).catch((err: unknown) => {
      this.#logger.warn({ err }, 'cannot tell whether containerd honours image pins')
      return undefined
    })
    if (support === undefined) return
    if (support.honoured === false && this.#pin.honoured !== false) this.#logger.warn({ containerd: support.containerdVersion }, support.note ?? 'containerd ignores image pins')
    this.#pin = support
  }

  async close (): Promise<void> {
    clearInterval(this.#pinTimer)
    this.#file.close()
    this.#labels.close()
    await this.#precacher.close()
  }

  status (): PrecacheStatus {
    return {
      file: this.#file.path,
      fileError: this.#file.error ?? null,
      loadedAt: this.#file.loadedAt?.toISOString() ?? null,
      mode: this.#target.mode,
      nodeLabels: this.#precacher.nodeLabels ?? null,
      nodeLabelsError: this.#labels.error ?? null,
      pin: this.#pin,
      sets: this.#precacher.sets(),
    }
  }

  counts (): Array<{ set: string, phase: PrecachePhase, count: number }> {
    return this.#precacher.counts()
  }
}
