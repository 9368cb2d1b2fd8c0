import { Metrics } from '../metrics/metrics.js'
import { buildMirror } from './build-mirror.js'
import { LifecycleStack } from './lifecycle-stack.js'
import { openLocalStore } from './open-local-store.js'
import { openUpstream } from './open-upstream.js'
import type { Role } from './role.js'
import { serveMirror } from './serve-mirror.js'
import { createPrecache } from './start-precache.js'

/**
 * The single-node pull-through mirror (`flotilla serve` with no configuration): its own store, the
 * upstream registries, the HTTP edge. No containerd, no peers: requests from peers are refused. A
 * pre-cache file warms (and pins) images in the store.
 */
export const startStandalone: Role = async (config, logger, env) => await LifecycleStack.start(logger, async (stack) => {
  const local = stack.use(await openLocalStore(config.dataDir, logger))
  const metrics = new Metrics()
  const upstream = stack.use(await openUpstream(config, logger, metrics))
  const engine = buildMirror({ config, local, upstream, metrics, logger })
  const precache = createPrecache(stack, { config, env, logger, mirror: engine.mirror, store: local.store })
  const daemon = await serveMirror(stack, { config, engine, metrics, logger, precache, status: { role: 'standalone', upstreams: () => upstream.upstream.status() } })
  await precache?.start()
  return daemon
})
