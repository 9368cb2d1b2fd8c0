import type { Logger } from 'pino'
import type { Config } from '../config/config-schema.js'
import type { Metrics } from '../metrics/metrics.js'
import type { ContentSource } from '../mirror/content-source.js'
import { Mirror, type RemoteContent } from '../mirror/mirror.js'
import { diskUsage } from '../store/disk-usage.js'
import { StoreBudget } from '../store/store-budget.js'
import type { LocalStore } from './open-local-store.js'
import type { OpenUpstream } from './open-upstream.js'

export interface MirrorParts {
  readonly config: Config
  readonly local: LocalStore
  readonly upstream: OpenUpstream
  readonly metrics: Metrics
  readonly logger: Logger
  /** The node's other stores (its containerd), asked before peers and upstream. */
  readonly localSources?: readonly ContentSource[]
  /** Content on peers, and where to tell what this node can now serve. */
  readonly peers?: { readonly content: RemoteContent, announce (keys: readonly string[]): void }
}

export interface BuiltMirror {
  readonly mirror: Mirror
  /** Keeps the store within store.maxBytes and store.maxDiskPercent. */
  readonly budget: StoreBudget
  /** Aborts the downloads still running and waits for them to settle (after the API stopped serving). */
  close (): Promise<void>
}

/** The one place the engine is built, for every role. */
export function buildMirror ({ config, local, upstream, metrics, logger, localSources = [], peers }: MirrorParts): BuiltMirror {
  // Credentials are read once at start: the registries this node fetches from with them.
  const credentialed = new Set([...config.registries.keys()].filter((r) => upstream.credentials.lookup(r) !== undefined))
  const mirror = new Mirror({
    store: local.store, tags: local.tags, upstream: upstream.upstream, localSources, metrics, logger: logger.child({ component: 'mirror' }),
    tagTtlMs: (registry) => config.registries.get(registry)?.tagTtlMs ?? config.tagTtlMs,
    firstByteTimeoutMs: config.firstByteTimeoutMs, stallTimeoutMs: config.stallTimeoutMs, downloadMemoryBytes: config.downloadMemory,
    // What is fetched with credentials is private to the repositories it is known in.
    scopes: local.scopes, fetchesWithCredentials: (registry) => credentialed.has(registry),
    ...(peers === undefined ? {} : { remote: peers.content, announce: (keys: readonly string[]) => { peers.announce(keys) } }),
  })
  const { maxBytes, maxDiskPercent, lowWaterPercent } = config.store
  const budget = new StoreBudget({
    store: local.store, tags: local.tags, scopes: local.scopes, maxDiskPercent, lowWaterPercent,
    ...(maxBytes === undefined ? {} : { maxBytes }),
    disk: async () => await diskUsage(config.dataDir),
    // A download's blob is committed before the download leaves the list: it is not evicted under its readers.
    isBusy: (digest) => mirror.isDownloading(digest),
    metrics, logger: logger.child({ component: 'store' }),
  })
  budget.start()
  return {
    mirror,
    budget,
    close: async () => {
      mirror.abortAll(new Error('shutting down'))
      await Promise.all(mirror.inflight.map(async (f) => await f.done))
      await mirror.settled()
      await budget.close()
    },
  }
}
