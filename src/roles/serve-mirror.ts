import { join } from 'node:path'
import type { Logger } from 'pino'
import type { Config } from '../config/config-schema.js'
import type { Metrics } from '../metrics/metrics.js'
import type { ObservabilityOptions } from '../server/observability-handler.js'
import type { PrecacheService } from '../precache/precache-service.js'
import type { ClientGate } from '../server/client-gate.js'
import type { BlobRedirects } from '../server/redirect-route.js'
import type { PeerPolicy } from '../server/peer-policy.js'
import { createRegistryHandler } from '../server/registry-handler.js'
import { metricsReadings } from '../status/metrics-readings.js'
import type { NodeStatus } from '../status/node-status.js'
import { NodeStatusSource, type StatusPeer } from '../status/node-status-source.js'
import { packageVersion } from '../status/package-version.js'
import { RecentErrors } from '../status/recent-errors.js'
import { describeOrigin } from '../mirror/blob-source.js'
import { loadZeroCopy } from '../native/native-zero-copy.js'
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
    /** Clients' blob GETs that nothing here has are sent to a peer or the owner (PullApiOptions.sendToHolders). */
    readonly sendToHolders?: boolean
  }
  /** The pre-cache: its status page and metric. */
  readonly precache?: PrecacheService | undefined
  /** What /status tells beyond the engine and the metrics; without it: the role guessed from `peers`, no upstreams. */
  readonly status?: {
    readonly role: string
    /** This node's zone (configured, or the node's label); default `p2p.zone`. */
    readonly zone?: () => string | null
    readonly peers?: () => readonly StatusPeer[]
    readonly upstreams?: () => NodeStatus['upstreams']
  }
  /** Clients must pass it (the mirror role's authentication). */
  readonly clientGate?: ClientGate
  /** Blob requests are redirected (the redirector role). */
  readonly blobRedirects?: BlobRedirects
  /** More JSON pages under /status/ (the redirector's). */
  readonly statusPages?: Readonly<Record<string, () => unknown>>
}

/**
 * Puts the engine behind the HTTP edge: the metricsListen listener (when configured), then the registry
 * API. Both are closed through `stack`, whose close the returned Daemon's is.
 */
export async function serveMirror (stack: LifecycleStack, o: ServeMirrorOptions): Promise<Daemon> {
  const { config, engine: { mirror }, metrics, logger, peers, precache } = o
  const recentErrors = new RecentErrors()
  let address = config.listen
  const nodeStatus = new NodeStatusSource({
    role: o.status?.role ?? (peers === undefined ? 'standalone' : 'agent'),
    version: packageVersion(),
    startedAt: Date.now(),
    address: () => address,
    zone: o.status?.zone ?? (() => config.p2p.zone ?? null),
    readings: metricsReadings(metrics, async () => await mirror.storeBytes()),
    downloads: () => mirror.inflight.filter((f) => f.state === 'running').map((f) => {
      const source = f.source
      return { digest: f.digest, registry: f.registry, size: f.size, bytesReceived: f.bytesReceived, startedAt: f.startedAt, source: source === undefined ? undefined : describeOrigin(source) }
    }),
    recentErrors: () => recentErrors.list(),
    ...(o.status?.peers === undefined ? {} : { peers: o.status.peers }),
    ...(o.status?.upstreams === undefined ? {} : { upstreams: o.status.upstreams }),
    ...(precache === undefined ? {} : { precache: () => precache.status() }),
  })
  const observability: ObservabilityOptions = {
    metrics,
    isReady: () => peers?.isReady() ?? true,
    beforeScrape: async () => {
      metrics.storeBytes.set(await mirror.storeBytes())
      metrics.downloadMemory.set(mirror.downloadMemoryBytes)
      metrics.peers.set(peers?.count() ?? 0)
      for (const u of o.status?.upstreams?.() ?? []) metrics.upstreamCircuitOpen.set({ registry: u.registry, endpoint: u.endpoint }, u.circuit === 'closed' ? 0 : 1)
      if (precache !== undefined) {
        metrics.precacheImages.reset()
        for (const { set, phase, count } of precache.counts()) metrics.precacheImages.set({ set, phase }, count)
      }
    },
    statusPages: { ...o.statusPages, ...(precache === undefined ? {} : { precache: () => precache.status() }) },
    nodeStatus: async () => await nodeStatus.status(),
  }
  // Started before the API listener, so that a bad metricsListen leaves nothing listening.
  const metricsListener = config.metricsListen === undefined ? undefined : stack.use(await startMetricsListener(config.metricsListen, observability, logger))
  const zeroCopy = config.zeroCopy === 'off' || config.tls !== undefined ? undefined : loadZeroCopy()
  if (zeroCopy instanceof Error) logger.warn({ err: zeroCopy.message }, 'native addon not loaded: blobs are served from files through JavaScript, without sendfile(2)')
  const handler = createRegistryHandler({
    // The edge's one error path logs what it answers with 5xx: the status page lists the last of them.
    mirror, logger: recentErrors.tap(logger.child({ component: 'http' })), ...observability,
    defaultRegistry: config.defaultRegistry,
    registries: new Set(config.registries.keys()),
    ...(zeroCopy === undefined || zeroCopy instanceof Error ? {} : { zeroCopy }),
    ...(peers === undefined ? {} : { peerPolicy: peers.policy, sendToHolders: peers.sendToHolders === true }),
    ...(o.clientGate === undefined ? {} : { clientGate: o.clientGate }),
    ...(o.blobRedirects === undefined ? {} : { blobRedirects: o.blobRedirects }),
  })
  // Downloads still running are aborted once the API has stopped serving, before anything they use closes.
  stack.use(o.engine)
  const server = stack.use(await startRegistryServer(config, handler, logger))
  address = server.address
  const metricsAddress = metricsListener?.address
  logger.info({ address: server.address, metricsAddress, dataDir: config.dataDir, registries: [...config.registries.keys()], tls: config.tls !== undefined, zeroCopy: zeroCopy !== undefined && !(zeroCopy instanceof Error) }, 'flotilla serving the OCI pull API')
  let closing: Promise<void> | undefined
  return {
    address: server.address, mirror, metrics, ...(metricsAddress === undefined ? {} : { metricsAddress }),
    close: async () => {
      closing ??= stack.close().then(() => { logger.info({ dataDir: join(config.dataDir) }, 'stopped') })
      await closing
    },
  }
}
