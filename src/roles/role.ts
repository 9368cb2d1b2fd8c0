import type { Logger } from 'pino'
import type { Config } from '../config/config-schema.js'
import type { Metrics } from '../metrics/metrics.js'
import type { Mirror } from '../mirror/mirror.js'

/** A running flotilla, whatever its role. */
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
 * One way of running flotilla: builds and starts what the configuration asks of it, all or nothing (what
 * was started before a failure is stopped again). `env` is the process environment, read only for what the
 * configuration cannot know (the Kubernetes node an agent runs on).
 */
export type Role = (config: Config, logger: Logger, env: NodeJS.ProcessEnv) => Promise<Daemon>
