import { ConfigError } from '../config/config-error.js'
import { parseConfigText } from '../config/load-config.js'
import { WatchedFile } from '../config/watched-file.js'
import { Metrics } from '../metrics/metrics.js'
import { ClientAddress } from '../redirect/client-address.js'
import { ExistenceChecker } from '../redirect/existence-checker.js'
import { RegionTable } from '../redirect/region-table.js'
import { Redirector } from '../redirect/redirector.js'
import { buildMirror } from './build-mirror.js'
import { LifecycleStack } from './lifecycle-stack.js'
import { openLocalStore } from './open-local-store.js'
import { openUpstream } from './open-upstream.js'
import type { Role } from './role.js'
import { serveMirror } from './serve-mirror.js'

/**
 * The redirector (`role: redirector`): manifests and tags answered from the origin (proxied and cached like the
 * mirror role, with its stale rules), never redirected; blobs sent with a 307 to the region nearest the client
 * that has them, else to the origin. The region table is re-read when the configuration file changes.
 */
export const startRedirector: Role = async (config, logger) => await LifecycleStack.start(logger, async (stack) => {
  const { origin } = config.redirect
  if (origin === undefined) throw new ConfigError('role redirector: redirect.origin is required (the source of truth, e.g. https://registry.example.com)')
  const host = new URL(origin).host
  // The origin is the one registry: every request names it, with or without ?ns=.
  const routed = { ...config, defaultRegistry: host, registries: new Map([[host, { endpoint: origin.replace(/\/+$/, ''), tagTtlMs: config.tagTtlMs, mirrors: [] }]]) }
  const checker = new ExistenceChecker({ hitTtlMs: config.redirect.existenceTTL, missTtlMs: config.redirect.missTTL, timeoutMs: config.redirect.checkTimeout })
  stack.defer(async () => { await checker.close() })
  const log = logger.child({ component: 'redirect' })
  // The table is re-read when the configuration file changes; a version refused keeps the last good one.
  const tableFile = config.configFile === undefined ? undefined : new WatchedFile({
    path: config.configFile, logger: log, what: 'region table',
    parse: (text, name) => new RegionTable(parseConfigText(text, name).redirect.regions),
    onValue: (t) => { redirector.setTable(t) },
    describe: (t) => ({ regions: t.regions.map((r) => r.name) }),
  })
  const redirector = new Redirector({
    origin, table: new RegionTable(config.redirect.regions), addresses: new ClientAddress(config.redirect.trustedProxies), checker,
    ...(tableFile === undefined ? {} : { tableFile }),
  })
  if (tableFile !== undefined) {
    await tableFile.start()
    stack.defer(() => { tableFile.close() })
  }
  const local = stack.use(await openLocalStore(config.dataDir, logger))
  const metrics = new Metrics()
  const upstream = stack.use(await openUpstream(routed, logger, metrics))
  const engine = buildMirror({ config: routed, local, upstream, metrics, logger })
  return await serveMirror(stack, {
    config: routed, engine, metrics, logger,
    status: { role: 'redirector', upstreams: () => upstream.upstream.status() },
    statusPages: { redirect: () => redirector.status() },
    blobRedirects: { decide: async (req, repository, digest) => await redirector.decide(req.socket.remoteAddress, req.headers['x-forwarded-for'], repository, digest) },
  })
})
