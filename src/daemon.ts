import { readFile } from 'node:fs/promises'
import { createServer as createHttpServer, type Server } from 'node:http'
import { createServer as createHttpsServer } from 'node:https'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import type { Logger } from 'pino'
import type { Config } from './config/config-schema.js'
import { Metrics } from './metrics/metrics.js'
import type { ContentSource } from './mirror/content-source.js'
import { Mirror } from './mirror/mirror.js'
import { createRegistryHandler } from './server/registry-handler.js'
import { lockDataDir } from './store/data-dir-lock.js'
import { FileTagIndex } from './store/file-tag-index.js'
import { FsBlobStore } from './store/fs-blob-store.js'
import { loadDockerCredentials } from './upstream/docker-credentials.js'
import { UndiciUpstream } from './upstream/undici-upstream.js'

export interface Daemon {
  /** host:port the registry API listens on. */
  readonly address: string
  readonly mirror: Mirror
  readonly metrics: Metrics
  /** Stops accepting, lets responses finish within the shutdown bound, then aborts what is left. */
  close (): Promise<void>
}

/** The composition root: the only place adapters are built and wired together. */
export async function startDaemon (config: Config, logger: Logger): Promise<Daemon> {
  const lock = await lockDataDir(config.dataDir)
  const cleanups: Array<() => Promise<void>> = [lock.release]
  const cleanup = async (): Promise<void> => {
    for (const c of cleanups.reverse()) await c().catch((err: unknown) => logger.warn({ err }, 'cleanup failed'))
  }
  try {
    const store = await FsBlobStore.open(config.dataDir)
    const tags = await FileTagIndex.open(config.dataDir)
    const credentials = await loadDockerCredentials(config.credentialsFile)
    const upstream = new UndiciUpstream({
      registries: config.registries, credentials, logger: logger.child({ component: 'upstream' }),
      connectTimeoutMs: config.upstream.connectTimeout, headersTimeoutMs: config.upstream.headersTimeout,
      bodyTimeoutMs: config.upstream.bodyTimeout, retries: config.upstream.retries,
    })
    cleanups.push(async () => { await upstream.close() })
    const metrics = new Metrics()
    const localSources: ContentSource[] = []
    const mirror = new Mirror({
      store, tags, upstream, localSources, metrics, logger: logger.child({ component: 'mirror' }),
      tagTtlMs: (registry) => config.registries.get(registry)?.tagTtlMs ?? config.tagTtlMs,
    })
    const handler = createRegistryHandler({
      mirror, metrics, logger: logger.child({ component: 'http' }),
      defaultRegistry: config.defaultRegistry,
      registries: new Set(config.registries.keys()),
      isReady: () => true,
    })
    const server: Server = config.tls === undefined
      ? createHttpServer({ keepAlive: true, keepAliveTimeout: 65_000, requestTimeout: 0 }, handler)
      : createHttpsServer({ keepAlive: true, keepAliveTimeout: 65_000, requestTimeout: 0, cert: await readFile(config.tls.cert), key: await readFile(config.tls.key) }, handler)
    server.headersTimeout = 30_000
    const address = await listen(server, config.listen)
    logger.info({ address, dataDir: config.dataDir, registries: [...config.registries.keys()], tls: config.tls !== undefined }, 'flotilla serving the OCI pull API')
    let closing: Promise<void> | undefined
    return {
      address, mirror, metrics,
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
