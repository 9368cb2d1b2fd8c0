import { ClientAuth } from '../auth/client-auth.js'
import { ConfigError } from '../config/config-error.js'
import { Metrics } from '../metrics/metrics.js'
import { buildMirror } from './build-mirror.js'
import { LifecycleStack } from './lifecycle-stack.js'
import { openLocalStore } from './open-local-store.js'
import { openUpstream } from './open-upstream.js'
import type { Role } from './role.js'
import { serveMirror } from './serve-mirror.js'
import { createPrecache } from './start-precache.js'

/**
 * The central mirror (`role: mirror`): a persistent pull-through cache that clusters and node agents chain to.
 * No containerd, no peers; its store is bounded by the budget like any; clients authenticate (htpasswd,
 * allowed networks) unless `auth.anonymous`. The configured registries are the upstreams it proxies, and
 * nothing else; pre-cache sets warm its store.
 */
export const startMirror: Role = async (config, logger, env) => await LifecycleStack.start(logger, async (stack) => {
  if (config.p2p.listen !== undefined || config.containerd.socket !== undefined) {
    throw new ConfigError('role mirror: p2p and containerd are the node agent\'s (unset p2p.listen and containerd.socket, or use role agent)')
  }
  const { htpasswd, allowCidrs, anonymous } = config.auth
  if (!anonymous && htpasswd === undefined && allowCidrs.length === 0) {
    throw new ConfigError('role mirror: clients must authenticate: set auth.htpasswd and/or auth.allowCidrs, or auth.anonymous: true')
  }
  const gate = anonymous ? undefined : await ClientAuth.open({ ...(htpasswd === undefined ? {} : { htpasswd }), allowCidrs, logger: logger.child({ component: 'auth' }) })
  if (config.tls === undefined) logger.warn('role mirror without TLS: credentials and content cross the network in the clear (set tls.cert and tls.key)')
  const local = stack.use(await openLocalStore(config.dataDir, logger))
  const metrics = new Metrics()
  const upstream = stack.use(await openUpstream(config, logger, metrics))
  const engine = buildMirror({ config, local, upstream, metrics, logger })
  const precache = createPrecache(stack, { config, env, logger, mirror: engine.mirror, store: local.store })
  const daemon = await serveMirror(stack, {
    config, engine, metrics, logger, precache, status: { role: 'mirror', upstreams: () => upstream.upstream.status() },
    ...(gate === undefined ? {} : { clientGate: gate }),
  })
  await precache?.start()
  return daemon
})
