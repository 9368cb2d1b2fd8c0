import { createServer } from 'node:http'
import type { Logger } from 'pino'
import { createObservabilityHandler, type ObservabilityOptions } from '../server/observability-handler.js'
import { listen } from './listen.js'

export interface MetricsListener {
  /** host:port it listens on. */
  readonly address: string
  close (): Promise<void>
}

/** Probes and the scrape on their own address (metricsListen), open to whoever reaches it. */
export async function startMetricsListener (hostPort: string, observability: ObservabilityOptions, logger: Logger): Promise<MetricsListener> {
  const server = createServer({ requestTimeout: 30_000 }, createObservabilityHandler({ ...observability, logger: logger.child({ component: 'metrics' }) }))
  const address = await listen(server, hostPort)
  return {
    address,
    close: async () => {
      // Scrapes and probes are short: no drain.
      const closed = new Promise<void>((resolve) => server.close(() => resolve()))
      server.closeAllConnections()
      await closed
    },
  }
}
