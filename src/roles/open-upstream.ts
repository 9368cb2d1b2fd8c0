import type { Logger } from 'pino'
import type { Config } from '../config/config-schema.js'
import { loadDockerCredentials, type DockerCredentials } from '../upstream/docker-credentials.js'
import { UndiciUpstream } from '../upstream/undici-upstream.js'

/** The configured registries, with the credentials the upstream client signs in with. */
export interface OpenUpstream {
  readonly upstream: UndiciUpstream
  readonly credentials: DockerCredentials
  close (): Promise<void>
}

export async function openUpstream (config: Config, logger: Logger): Promise<OpenUpstream> {
  const credentials = await loadDockerCredentials(config.credentialsFile)
  const upstream = new UndiciUpstream({
    registries: config.registries, credentials, logger: logger.child({ component: 'upstream' }),
    connectTimeoutMs: config.upstream.connectTimeout, headersTimeoutMs: config.upstream.headersTimeout,
    bodyTimeoutMs: config.upstream.bodyTimeout, retries: config.upstream.retries,
  })
  return { upstream, credentials, close: async () => { await upstream.close() } }
}
