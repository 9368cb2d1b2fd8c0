import { join } from 'node:path'
import type { Logger } from 'pino'
import type { Config } from '../config/config-schema.js'
import type { Metrics } from '../metrics/metrics.js'
import type { ObservabilityOptions } from '../server/observability-handler.js'
import type { PrecacheService } from '../precache/precache-service.js'
import type { PeerPolicy } from '../server/peer-policy.js'
import { createRegistryHandler } from '../server/registry-handler.js'
import type { BuiltMirror } from './build-mirror.js'
import type { LifecycleStack } from './lifecycle-stack.js'
import type { Daemon } from './role.js'
import { startMetricsListener } from './start-metrics-listener.js'
import { startRegistryServer } from './start-registry-server.js'

export interface ServeMirrorOptions {
  readonly config: Config
  readonly engine: BuiltMirror
  readonly metrics: Metrics
  readonly logger: Logger
  /** This node's peers: readiness and count for probes and metrics, and who the edge admits. */
  readonly peers?: {
    isReady (): boolean
    count (): number
    readonly policy: PeerPolicy
  }
  /** The pre-cache: its status page and metric. */
  readonly precache?: PrecacheService | undefined
}

/**
 * Puts the engine behind the HTTP edge: the metricsListen listener (when configured), then the registry
 * API. Both are closed through `stack`, whose close the returned Daemon's is.
 */
export async function serveMirror (stack: LifecycleStack, o: ServeMirrorOptions): Promise<Daemon> {
  const { config, engine: { mirror }, metrics, logger, peers, precache } = o
  const observability: ObservabilityOptions = {
    metrics,
    isReady: () => peers?.isReady() ?? true,
    beforeScrape: async () => {
      metrics.storeBytes.set(await mirror.storeBytes())
      metrics.peers.set(peers?.count() ?? 0)
      if (precache !== undefined) {
        metrics.precacheImages.reset()
        for (const { set, phase, count } of precache.counts()) metrics.precacheImages.set({ set, phase }, count)
      }
    },
    ...(precache === undefined ? {} : { statusPages: { precache: () => precache.status() } }),
  }
  // Started before the API listener, so that a bad metricsListen leaves nothing listening.
  const metricsListener = config.metricsListen === undefined ? undefined : stack.use(await startMetricsListener(config.metricsListen, observability, logger))
  const handler = createRegistryHandler({
    mirror, logger: logger.child({ component: 'http' }), ...observability,
    defaultRegistry: config.defaultRegistry,
    registries: new Set(config.registries.keys()),
    ...(peers === undefined ? {} : { peerPolicy: peers.policy }),
  })
  // Downloads still running are aborted once the API has stopped serving, before anything they use closes.
  stack.use(o.engine)
  const server = stack.use(await startRegistryServer(config, handler, logger))
  const metricsAddress = metricsListener?.address
  logger.info({ address: server.address, metricsAddress, dataDir: config.dataDir, registries: [...config.registries.keys()], tls: config.tls !== undefined }, 'flotilla serving the OCI pull API')
  let closing: Promise<void> | undefined
  return {
    address: server.address, mirror, metrics, ...(metricsAddress === undefined ? {} : { metricsAddress }),
    close: async () => {
      closing ??= stack.close().then(() => { logger.info({ dataDir: join(config.dataDir) }, 'stopped') })
      await closing
    },
  }
}
