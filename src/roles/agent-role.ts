import { Metrics } from '../metrics/metrics.js'
import type { ContentSource } from '../mirror/content-source.js'
import { ContentAdvertiser } from '../p2p/content-advertiser.js'
import { HttpPeerPolicy } from '../p2p/http-peer-policy.js'
import { OwnerFanout } from '../p2p/owner-fanout.js'
import { buildMirror } from './build-mirror.js'
import { LifecycleStack } from './lifecycle-stack.js'
import { openLocalStore } from './open-local-store.js'
import { openUpstream } from './open-upstream.js'
import type { Role } from './role.js'
import { serveMirror } from './serve-mirror.js'
import { createPrecache } from './start-precache.js'

/**
 * The node agent: the single-node mirror plus what the node offers. The node's containerd is a local source
 * when `containerd.socket` is set; with `p2p.listen` the agent joins its peers, fetches from them, advertises
 * what it holds, and admits only peers and this host. With containerd's content dir mounted, the node keeps one
 * copy of each blob both hold (see ContainerdLinker). The gRPC and libp2p code loads only when configured.
 */
export const startAgent: Role = async (config, logger, env) => await LifecycleStack.start(logger, async (stack) => {
  const local = stack.use(await openLocalStore(config.dataDir, logger))
  const metrics = new Metrics()
  const upstream = stack.use(await openUpstream(config, logger, metrics))
  const network = config.p2p.listen === undefined
    ? undefined
    : stack.use(await (await import('./start-peer-network.js')).startPeerNetwork(config, logger, env))
  const localSources: ContentSource[] = []
  const { socket, contentDir } = config.containerd
  const node = socket === undefined
    ? undefined
    : stack.use(await (await import('./start-containerd-source.js')).startContainerdSource({ ...config.containerd, socket }, logger))
  const containerd = node?.source
  if (containerd !== undefined) localSources.push(containerd)
  const advertiser = network === undefined
    ? undefined
    : new ContentAdvertiser({ router: network.router, store: local.store, tags: local.tags, localSources, logger: logger.child({ component: 'p2p' }) })
  const engine = buildMirror({
    config, local, upstream, metrics, logger, localSources,
    ...(network === undefined || advertiser === undefined ? {} : { peers: { content: network.content, announce: (keys) => { advertiser.announce(keys) } } }),
  })
  if (advertiser !== undefined) {
    stack.defer(() => { advertiser.stop() })
    await advertiser.start()
  }
  if (containerd !== undefined && contentDir !== undefined) {
    const { startContainerdLinks } = await import('./start-containerd-links.js')
    stack.use(await startContainerdLinks({
      store: local.store, containerd, contentDir, dataDir: config.dataDir, logger,
      ...(advertiser === undefined ? {} : { announce: (digest) => { advertiser.announce([digest]) } }),
    }))
  }
  const precache = createPrecache(stack, { config, env, logger, mirror: engine.mirror, store: local.store, ...(node === undefined ? {} : { containerd: node }) })
  const daemon = await serveMirror(stack, {
    config, engine, metrics, logger, precache,
    status: {
      role: 'agent',
      zone: () => network?.router.self().zone ?? config.p2p.zone ?? null,
      peers: () => network?.router.peers() ?? [],
      upstreams: () => upstream.upstream.status(),
    },
    // Only peers and this host may ask an agent in the network.
    ...(network === undefined ? {} : {
      peers: {
        isReady: () => network.router.ready(),
        count: () => network.router.peers().length,
        policy: new HttpPeerPolicy({ credentials: network.credentials, requireForRemote: true, ownerFanout: new OwnerFanout({ limit: config.p2p.ownerFanout }) }),
        // With containerd wired, its store keeps the node's copy of what its pulls get from a peer directly.
        sendToHolders: config.p2p.sendToHolders === 'on' || (config.p2p.sendToHolders === 'auto' && containerd !== undefined),
      },
    }),
  })
  // containerd's pulls come back through the API: it listens now.
  await precache?.start()
  return daemon
})
