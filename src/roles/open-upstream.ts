import { readFile } from 'node:fs/promises'
import type { Logger } from 'pino'
import { ConfigError } from '../config/config-error.js'
import type { Config, MirrorConfig } from '../config/config-schema.js'
import type { Metrics } from '../metrics/metrics.js'
import { ChainedUpstream, type ChainLink } from '../upstream/chained-upstream.js'
import { DockerCredentials, loadDockerCredentials } from '../upstream/docker-credentials.js'
import { UndiciUpstream } from '../upstream/undici-upstream.js'

/** The configured registries, with the credentials the upstream client signs in with. */
export interface OpenUpstream {
  readonly upstream: ChainedUpstream
  readonly credentials: DockerCredentials
  close (): Promise<void>
}

/**
 * The upstream client of every role: each registry's endpoint, behind the mirrors it lists (one client per
 * mirror, asked with `?ns=<registry>`, signed in with the docker config's credentials for the mirror's host,
 * never retried: a failing mirror is passed over at once).
 */
export async function openUpstream (config: Config, logger: Logger, metrics?: Metrics): Promise<OpenUpstream> {
  const credentials = await loadDockerCredentials(config.credentialsFile)
  const log = logger.child({ component: 'upstream' })
  const timeouts = { connectTimeoutMs: config.upstream.connectTimeout, headersTimeoutMs: config.upstream.headersTimeout, bodyTimeoutMs: config.upstream.bodyTimeout }
  const primary = new UndiciUpstream({ registries: config.registries, credentials, logger: log, ...timeouts, retries: config.upstream.retries })
  // One client per mirror (URL and TLS settings), serving each registry that lists it.
  const byMirror = new Map<string, { mirror: MirrorConfig, registries: string[] }>()
  for (const [registry, r] of config.registries) {
    for (const m of r.mirrors) {
      const key = JSON.stringify([m.url, m.ca ?? null, m.skipVerify === true])
      const entry = byMirror.get(key) ?? { mirror: m, registries: [] }
      entry.registries.push(registry)
      byMirror.set(key, entry)
    }
  }
  const clients = new Map<string, ChainLink>()
  for (const [key, { mirror, registries }] of byMirror) {
    const host = new URL(mirror.url).host
    const credential = credentials.lookup(host)
    let ca: Buffer | undefined
    if (mirror.ca !== undefined) {
      ca = await readFile(mirror.ca).catch((err: NodeJS.ErrnoException) => { throw new ConfigError(`mirror ${mirror.url}: cannot read its ca ${mirror.ca ?? ''}: ${err.code ?? err.message}`) })
    }
    const upstream = new UndiciUpstream({
      registries: new Map(registries.map((r) => [r, { endpoint: mirror.url }])),
      credentials: new DockerCredentials(credential === undefined ? [] : registries.map((r) => [r, credential] as const)),
      logger: log.child({ mirror: mirror.url }), ...timeouts, retries: 0, namespaceQuery: true,
      ...(ca === undefined && mirror.skipVerify !== true ? {} : { tls: { ...(ca === undefined ? {} : { ca }), ...(mirror.skipVerify === true ? { rejectUnauthorized: false } : {}) } }),
    })
    clients.set(key, { name: mirror.url, upstream })
  }
  const mirrors = new Map<string, ChainLink[]>()
  for (const [registry, r] of config.registries) {
    if (r.mirrors.length === 0) continue
    mirrors.set(registry, r.mirrors.map((m) => clients.get(JSON.stringify([m.url, m.ca ?? null, m.skipVerify === true])) as ChainLink))
  }
  const upstream = new ChainedUpstream({
    primary, mirrors, logger: log,
    ...(metrics === undefined ? {} : {
      onResult: (link: string, registry: string, result: string) => { metrics.upstreamEndpointRequests.inc({ endpoint: link, registry, result }) },
      onBytes: (link: string, registry: string, bytes: number) => { metrics.upstreamEndpointBytes.inc({ endpoint: link, registry }, bytes) },
    }),
  })
  return { upstream, credentials, close: async () => { await upstream.close() } }
}
