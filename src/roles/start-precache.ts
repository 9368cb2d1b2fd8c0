import type { Logger } from 'pino'
import type { Config } from '../config/config-schema.js'
import type { Mirror } from '../mirror/mirror.js'
import { DEFAULT_MANIFEST_ACCEPT } from '../oci/index.js'
import { ContainerdTarget } from '../precache/containerd-target.js'
import { NodeLabelsSource } from '../precache/node-labels-source.js'
import { PrecacheService } from '../precache/precache-service.js'
import type { PrecacheTarget } from '../precache/precache-target.js'
import { StoreTarget } from '../precache/store-target.js'
import type { BlobStore } from '../store/blob-store.js'
import type { LifecycleStack } from './lifecycle-stack.js'
import type { StartedContainerdSource } from './start-containerd-source.js'

export interface PrecacheParts {
  readonly config: Config
  readonly env: NodeJS.ProcessEnv
  readonly logger: Logger
  readonly mirror: Mirror
  readonly store: BlobStore
  /** The node's containerd: images go there (pulled through its CRI, pinned); without it, into the store. */
  readonly containerd?: Pick<StartedContainerdSource, 'client' | 'criClient'>
}

/**
 * The pre-cache when `precache.file` is set: built here, started by the role once its API listens (the
 * node's containerd pulls through it). Tags are resolved through this agent's own mirror, which asks the
 * upstream even while its record is fresh, and answers from peers or its last good record when it cannot.
 */
export function createPrecache (stack: LifecycleStack, o: PrecacheParts): PrecacheService | undefined {
  const file = o.config.precache.file
  if (file === undefined) return undefined
  const logger = o.logger.child({ component: 'precache' })
  let target: PrecacheTarget
  if (o.containerd !== undefined) {
    const cri = o.containerd.criClient(10_000)
    stack.defer(() => { cri.close() })
    target = new ContainerdTarget({ client: o.containerd.client, cri, logger })
  } else {
    target = new StoreTarget({ mirror: o.mirror, store: o.store })
  }
  const node = o.config.nodeLabels === undefined ? NodeLabelsSource.options(o.env) : undefined
  const service = new PrecacheService({
    file, target, logger,
    concurrency: o.config.precache.concurrency,
    pullTimeoutMs: o.config.precache.pullTimeout,
    ...(o.config.nodeLabels === undefined ? {} : { configuredLabels: o.config.nodeLabels }),
    ...(node === undefined ? {} : { node }),
    resolveTag: async (image, signal) => {
      const { registry, repository, tag } = image.ref
      if (tag === undefined) throw new TypeError(`${image.key} has no tag to resolve`)
      const r = await o.mirror.getManifest({ registry, repository, signal, revalidate: true }, { kind: 'tag', tag }, DEFAULT_MANIFEST_ACCEPT)
      return { digest: r.digest, ...(r.confirmedAt === undefined ? {} : { confirmedAt: r.confirmedAt }) }
    },
  })
  return stack.use(service)
}
