import { readFile } from 'node:fs/promises'
import { createServer as createHttpServer, type Server } from 'node:http'
import { createServer as createHttpsServer } from 'node:https'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import type { Logger } from 'pino'
import type { Config } from './config/config-schema.js'
import { ConfigError } from './config/load-config.js'
import { Metrics } from './metrics/metrics.js'
import type { ContentSource } from './mirror/content-source.js'
import { Mirror } from './mirror/mirror.js'
import { createObservabilityHandler, type ObservabilityOptions } from './server/observability-handler.js'
import { createRegistryHandler } from './server/registry-handler.js'
import { lockDataDir } from './store/data-dir-lock.js'
import { FileScopeIndex } from './store/file-scope-index.js'
import { FileTagIndex } from './store/file-tag-index.js'
import { FsBlobStore } from './store/fs-blob-store.js'
import { loadDockerCredentials } from './upstream/docker-credentials.js'
import { UndiciUpstream } from './upstream/undici-upstream.js'
import type { ContentAdvertiser } from './p2p/content-advertiser.js'
import { HttpPeerPolicy } from './p2p/http-peer-policy.js'
import { OwnerFanout } from './p2p/owner-fanout.js'
import { peerToken } from './p2p/peer-auth.js'
import type { PeerCredentials } from './p2p/peer-credentials.js'
import type { PeerContent } from './p2p/peer-content.js'
import type { Router } from './p2p/router.js'
import type { BlobStore } from './store/blob-store.js'
import type { TagIndex } from './store/tag-index.js'

export interface Daemon {
  /** host:port the registry API listens on. */
  readonly address: string
  /** host:port of the metricsListen server, when configured. */
  readonly metricsAddress?: string
  readonly mirror: Mirror
  readonly metrics: Metrics
  /** Stops accepting, lets responses finish within the shutdown bound, then aborts what is left. */
  close (): Promise<void>
}

/**
 * The composition root: the only place adapters are built and wired together. `env` is the process
 * environment, read only for what the configuration cannot know (the Kubernetes node the agent runs on).
 */
export async function startDaemon (config: Config, logger: Logger, env: NodeJS.ProcessEnv = process.env): Promise<Daemon> {
  const lock = await lockDataDir(config.dataDir)
  const cleanups: Array<() => Promise<void>> = [lock.release]
  const cleanup = async (): Promise<void> => {
    for (const c of cleanups.reverse()) await c().catch((err: unknown) => logger.warn({ err }, 'cleanup failed'))
  }
  try {
    const store = await FsBlobStore.open(config.dataDir)
    const tags = await FileTagIndex.open(config.dataDir)
    const scopes = await FileScopeIndex.open(config.dataDir)
    const credentials = await loadDockerCredentials(config.credentialsFile)
    const upstream = new UndiciUpstream({
      registries: config.registries, credentials, logger: logger.child({ component: 'upstream' }),
      connectTimeoutMs: config.upstream.connectTimeout, headersTimeoutMs: config.upstream.headersTimeout,
      bodyTimeoutMs: config.upstream.bodyTimeout, retries: config.upstream.retries,
    })
    cleanups.push(async () => { await upstream.close() })
    const metrics = new Metrics()
    const p2p = config.p2p.listen === undefined ? undefined : await startP2p(config, store, tags, logger, env)
    if (p2p !== undefined) cleanups.push(p2p.close)
    const localSources: ContentSource[] = []
    if (config.containerd.socket !== undefined) {
      const { ContainerdContentSource } = await import('./containerd/containerd-content-source.js')
      const containerd = new ContainerdContentSource({
        socket: config.containerd.socket, namespace: config.containerd.namespace,
        ...(config.containerd.contentDir === undefined ? {} : { contentDir: config.containerd.contentDir }),
        logger: logger.child({ component: 'containerd' }),
      })
      await containerd.start()
      cleanups.push(async () => { await containerd.close() })
      localSources.push(containerd)
    }
    const mirror = new Mirror({
      store, tags, upstream, localSources, metrics, logger: logger.child({ component: 'mirror' }),
      tagTtlMs: (registry) => config.registries.get(registry)?.tagTtlMs ?? config.tagTtlMs,
      firstByteTimeoutMs: config.firstByteTimeoutMs, stallTimeoutMs: config.stallTimeoutMs,
      // What is fetched with credentials is private to the repositories it is known in.
      scopes, fetchesWithCredentials: (registry) => credentials.lookup(registry) !== undefined,
      ...(p2p === undefined ? {} : { remote: p2p.content, announce: (keys: readonly string[]) => p2p.advertiser?.announce(keys) }),
    })
    if (p2p !== undefined) await p2p.advertise(localSources)
    const observability: ObservabilityOptions = {
      metrics,
      isReady: () => p2p?.router.ready() ?? true,
      beforeScrape: async () => {
        metrics.storeBytes.set(await mirror.storeBytes())
        metrics.peers.set(p2p?.router.peers().length ?? 0)
      },
    }
    // Started before the API listener, so that a bad metricsListen leaves nothing listening.
    let metricsAddress: string | undefined
    if (config.metricsListen !== undefined) {
      const metricsServer = createHttpServer({ requestTimeout: 30_000 }, createObservabilityHandler({ ...observability, logger: logger.child({ component: 'metrics' }) }))
      metricsAddress = await listen(metricsServer, config.metricsListen)
      cleanups.push(async () => {
        // Scrapes and probes are short: no drain.
        const closed = new Promise<void>((resolve) => metricsServer.close(() => resolve()))
        metricsServer.closeAllConnections()
        await closed
      })
    }
    const handler = createRegistryHandler({
      mirror, logger: logger.child({ component: 'http' }), ...observability,
      defaultRegistry: config.defaultRegistry,
      registries: new Set(config.registries.keys()),
      // Without p2p the edge refuses requests from peers; with it, only peers and this host may ask.
      ...(p2p === undefined ? {} : {
        peerPolicy: new HttpPeerPolicy({ credentials: p2p.token, requireForRemote: true, ownerFanout: new OwnerFanout({ limit: config.p2p.ownerFanout }) }),
      }),
    })
    const server: Server = config.tls === undefined
      ? createHttpServer({ keepAlive: true, keepAliveTimeout: 65_000, requestTimeout: 0 }, handler)
      : createHttpsServer({ keepAlive: true, keepAliveTimeout: 65_000, requestTimeout: 0, cert: await readFile(config.tls.cert), key: await readFile(config.tls.key) }, handler)
    server.headersTimeout = 30_000
    const address = await listen(server, config.listen)
    logger.info({ address, metricsAddress, dataDir: config.dataDir, registries: [...config.registries.keys()], tls: config.tls !== undefined }, 'flotilla serving the OCI pull API')
    let closing: Promise<void> | undefined
    return {
      address, mirror, metrics, ...(metricsAddress === undefined ? {} : { metricsAddress }),
      close: () => {
        closing ??= (async () => {
          await shutdown(server, config.shutdownTimeoutMs, logger)
          mirror.abortAll(new Error('shutting down'))
          await Promise.all(mirror.inflight.map(async (f) => await f.done))
          await cleanup()
          logger.info({ dataDir: join(config.dataDir) }, 'stopped')
        })()
        return closing
      },
    }
  } catch (err) {
    await cleanup()
    throw err
  }
}

async function listen (server: Server, hostPort: string): Promise<string> {
  const colon = hostPort.lastIndexOf(':')
  const host = hostPort.slice(0, colon).replace(/^\[|\]$/g, '') || '0.0.0.0'
  const port = Number(hostPort.slice(colon + 1))
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => { server.off('error', reject); resolve() })
  })
  const a = server.address() as AddressInfo
  return a.family === 'IPv6' ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`
}

async function shutdown (server: Server, timeoutMs: number, logger: Logger): Promise<void> {
  const closed = new Promise<void>((resolve) => server.close(() => resolve()))
  // Keep-alive sockets turn idle as their last response ends: close them as they do.
  server.closeIdleConnections()
  const sweep = setInterval(() => server.closeIdleConnections(), 100)
  const timer = setTimeout(() => {
    logger.warn({ timeoutMs }, 'shutdown bound reached; closing remaining connections')
    server.closeAllConnections()
  }, timeoutMs)
  timer.unref()
  await closed
  clearTimeout(timer)
  clearInterval(sweep)
}

interface P2p {
  readonly router: Router
  readonly content: PeerContent
  readonly token: PeerCredentials
  advertiser?: ContentAdvertiser
  advertise (localSources: readonly ContentSource[]): Promise<void>
  close (): Promise<void>
}

/** The peer-to-peer side: libp2p router (loaded only when configured), peer fetching and advertising. */
async function startP2p (config: Config, store: BlobStore, tags: TagIndex, logger: Logger, env: NodeJS.ProcessEnv): Promise<P2p> {
  const p2pConfig = config.p2p
  if (p2pConfig.listen === undefined) throw new TypeError('p2p.listen is required')
  if (p2pConfig.clusterKeyFile === undefined) {
    throw new ConfigError('p2p needs a cluster key: pass --cluster-key-file FILE (create one with `flotilla cluster-key > FILE`)')
  }
  const { parseClusterKey } = await import('./p2p/cluster-key.js')
  let keyText: string
  try {
    keyText = await readFile(p2pConfig.clusterKeyFile, 'utf8')
  } catch (err) {
    throw new ConfigError(`cannot read cluster key file ${p2pConfig.clusterKeyFile}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`)
  }
  const clusterKey = parseClusterKey(keyText)
  const { createLibp2pRouter } = await import('./p2p/libp2p-router.js')
  const { PeerContent } = await import('./p2p/peer-content.js')
  const { ContentAdvertiser } = await import('./p2p/content-advertiser.js')
  const { defaultPeerAddress } = await import('./p2p/peer-address.js')
  const { zoneFromNodeLabel } = await import('./p2p/node-zone.js')
  const p2pLogger = logger.child({ component: 'p2p' })
  // A configured zone (file, env or flag) wins; on Kubernetes the node's zone label is the fallback.
  const zone = p2pConfig.zone ?? await zoneFromNodeLabel(env, p2pLogger)
  const router = await createLibp2pRouter({
    listen: p2pConfig.listen, bootstrap: p2pConfig.bootstrap, clusterKey,
    identityFile: join(config.dataDir, 'p2p-identity.key'),
    httpAddress: p2pConfig.peerAddress ?? defaultPeerAddress(p2pConfig.listen, config.listen),
    ...(zone === undefined ? {} : { zone }),
    logger: p2pLogger,
  })
  const token = peerToken(clusterKey)
  const content = new PeerContent({ router, credentials: token, logger: p2pLogger, ...(zone === undefined ? {} : { zone }) })
  const p2p: P2p = {
    router, content, token,
    advertise: async (localSources) => {
      p2p.advertiser = new ContentAdvertiser({ router, store, tags, localSources, logger: p2pLogger })
      await p2p.advertiser.start()
    },
    close: async () => {
      p2p.advertiser?.stop()
      await content.close()
      await router.close()
    },
  }
  logger.info({ listen: p2pConfig.listen, self: router.self() }, 'joined the peer-to-peer network')
  return p2p
}
