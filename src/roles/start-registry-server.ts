import { readFile } from 'node:fs/promises'
import { createServer as createHttpServer, type Server } from 'node:http'
import { createServer as createHttpsServer } from 'node:https'
import type { Logger } from 'pino'
import type { Config } from '../config/config-schema.js'
import type { Handler } from '../server/route-handler.js'
import { listen } from './listen.js'

export interface RegistryServer {
  /** host:port the registry API listens on. */
  readonly address: string
  /** Stops accepting, lets responses finish within the shutdown bound, then closes what is left. */
  close (): Promise<void>
}

/** The registry API listener (HTTPS when `config.tls` is set) serving `handler`. */
export async function startRegistryServer (config: Pick<Config, 'listen' | 'tls' | 'shutdownTimeoutMs'>, handler: Handler, logger: Logger): Promise<RegistryServer> {
  const options = { keepAlive: true, keepAliveTimeout: 65_000, requestTimeout: 0 }
  const server: Server = config.tls === undefined
    ? createHttpServer(options, handler)
    : createHttpsServer({ ...options, cert: await readFile(config.tls.cert), key: await readFile(config.tls.key) }, handler)
  server.headersTimeout = 30_000
  const address = await listen(server, config.listen)
  return { address, close: async () => { await shutdown(server, config.shutdownTimeoutMs, logger) } }
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
