import type { Logger } from 'pino'
import { inClusterNodeOptions, readNodeLabels, type NodeApiOptions } from '../kube/node-labels.js'

export interface NodeLabelsSourceOptions {
  /** Labels given in the configuration (`nodeLabels`): used as they are, never read from the cluster. */
  readonly configured?: Readonly<Record<string, string>>
  /** Where the node object is read, when running in a cluster (`NODE_NAME` and the service account). */
  readonly node?: NodeApiOptions
  readonly logger: Logger
  readonly onLabels: (labels: Readonly<Record<string, string>>) => void
  /** How often the node object is read again; default 60 s. */
  readonly intervalMs?: number
}

/**
 * This node's labels for the pre-cache's node selectors: the configured ones, else the node object's
 * (re-read every `intervalMs`, so that a label added with `kubectl label node` takes effect), else none
 * (outside a cluster: only sets without a selector match). A failed read keeps the last labels.
 */
export class NodeLabelsSource {
  readonly #o: NodeLabelsSourceOptions
  readonly #closed = new AbortController()
  #timer: NodeJS.Timeout | undefined
  labels: Readonly<Record<string, string>> | undefined
  error: string | undefined

  constructor (options: NodeLabelsSourceOptions) {
    this.#o = options
  }

  static options (env: NodeJS.ProcessEnv): NodeApiOptions | undefined {
    return inClusterNodeOptions(env)
  }

  async start (): Promise<void> {
    const { configured, node } = this.#o
    if (configured !== undefined || node === undefined) {
      this.#set(configured ?? {})
      return
    }
    await this.#read(node)
    this.#timer = setInterval(() => { void this.#read(node) }, this.#o.intervalMs ?? 60_000)
    this.#timer.unref()
  }

  close (): void {
    this.#closed.abort()
    clearInterval(this.#timer)
  }

  async #read (node: NodeApiOptions): Promise<void> {
    try {
      this.#set(await readNodeLabels({ ...node, signal: this.#closed.signal }))
      if (this.error !== undefined) this.#o.logger.info({ node: node.nodeName }, 'node labels read again')
      this.error = undefined
    } catch (err) {
      if (this.#closed.signal.aborted) return
      const message = err instanceof Error ? err.message : String(err)
      if (message !== this.error) {
        this.#o.logger.warn({ node: node.nodeName, keeping: this.labels === undefined ? 'no labels yet: sets with a nodeSelector wait' : 'the last labels read' }, `node labels not read: ${message}`)
      }
      this.error = message
    }
  }

  #set (labels: Readonly<Record<string, string>>): void {
    this.labels = labels
    this.#o.onLabels(labels)
  }
}
