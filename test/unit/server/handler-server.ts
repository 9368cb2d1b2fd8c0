import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { pino } from 'pino'
import { Metrics } from '../../../src/metrics/metrics.js'
import { Mirror } from '../../../src/mirror/mirror.js'
import type { PeerPolicy } from '../../../src/server/peer-policy.js'
import { createRegistryHandler } from '../../../src/server/registry-handler.js'
import { MemoryBlobStore } from '../../../src/store/memory-blob-store.js'
import { MemoryTagIndex } from '../../../src/store/memory-tag-index.js'
import type { Upstream } from '../../../src/upstream/upstream.js'

export const REGISTRY = 'registry.test'

export interface HandlerServer {
  /** `http://127.0.0.1:<port>` */
  readonly url: string
  readonly port: number
  readonly server: Server
  readonly store: MemoryBlobStore
  readonly tags: MemoryTagIndex
  readonly metrics: Metrics
  close (): Promise<void>
}

/** The registry handler on a real HTTP server on port 0, over a Mirror on the in-memory adapters. */
export async function startHandlerServer (upstream: Upstream, options: { host?: string, registries?: readonly string[], peerPolicy?: PeerPolicy } = {}): Promise<HandlerServer> {
  const registries = options.registries ?? [REGISTRY]
  const store = new MemoryBlobStore()
  const tags = new MemoryTagIndex()
  const logger = pino({ level: 'silent' })
  const metrics = new Metrics({ defaultMetrics: false })
  const mirror = new Mirror({ store, tags, upstream, tagTtlMs: () => 60_000, metrics, logger })
  const server = createServer(createRegistryHandler({
    mirror, metrics, logger, defaultRegistry: registries[0] ?? REGISTRY, registries: new Set(registries), isReady: () => true,
    ...(options.peerPolicy === undefined ? {} : { peerPolicy: options.peerPolicy }),
  }))
  await new Promise<void>((resolve) => server.listen(0, options.host ?? '127.0.0.1', resolve))
  const port = (server.address() as AddressInfo).port
  return {
    url: `http://127.0.0.1:${port}`, port, server, store, tags, metrics,
    close: async () => {
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}
