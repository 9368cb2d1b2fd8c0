import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { Logger } from 'pino'
import { Agent } from 'undici'
import type { Config } from '../config/config-schema.js'
import { ConfigError } from '../config/config-error.js'
import { parseClusterKey } from '../p2p/cluster-key.js'
import { createLibp2pRouter, type Libp2pRouter } from '../p2p/libp2p-router.js'
import { zoneFromNodeLabel } from '../p2p/node-zone.js'
import { peerToken } from '../p2p/peer-auth.js'
import { defaultPeerAddress } from '../p2p/peer-address.js'
import { PEER_DISPATCHER_DEFAULTS, PeerContent } from '../p2p/peer-content.js'
import type { PeerCredentials } from '../p2p/peer-credentials.js'
import { LifecycleStack } from './lifecycle-stack.js'

/** This node in the peer-to-peer network: the router, fetching from peers, and the cluster's credentials. */
export interface PeerNetwork {
  readonly router: Libp2pRouter
  readonly content: PeerContent
  /** Signs this node's requests to peers and checks theirs. */
  readonly credentials: PeerCredentials
  /** Leaves the network: peer connections, then the router. */
  close (): Promise<void>
}

/** Joins the network `config.p2p` describes; throws ConfigError without a readable cluster key. */
export async function startPeerNetwork (config: Config, logger: Logger, env: NodeJS.ProcessEnv): Promise<PeerNetwork> {
  const p2p = config.p2p
  const listen = p2p.listen
  if (listen === undefined) throw new TypeError('p2p.listen is required')
  const clusterKey = parseClusterKey(await readClusterKey(p2p.clusterKeyFile))
  const p2pLogger = logger.child({ component: 'p2p' })
  // A configured zone (file, env or flag) wins; on Kubernetes the node's zone label is the fallback.
  const zone = p2p.zone ?? await zoneFromNodeLabel(env, p2pLogger)
  const network = await LifecycleStack.start(logger, async (stack) => {
    const router = stack.use(await createLibp2pRouter({
      listen, bootstrap: p2p.bootstrap, clusterKey,
      identityFile: join(config.dataDir, 'p2p-identity.key'),
      httpAddress: p2p.peerAddress ?? defaultPeerAddress(listen, config.listen),
      ...(zone === undefined ? {} : { zone }),
      logger: p2pLogger,
    }))
    const dispatcher = stack.use(new Agent(PEER_DISPATCHER_DEFAULTS))
    const credentials = peerToken(clusterKey)
    const content = new PeerContent({ router, dispatcher, credentials, logger: p2pLogger, ...(zone === undefined ? {} : { zone }) })
    return { router, content, credentials, close: async () => { await stack.close() } }
  })
  logger.info({ listen, self: network.router.self() }, 'joined the peer-to-peer network')
  return network
}

async function readClusterKey (file: string | undefined): Promise<string> {
  if (file === undefined) {
    throw new ConfigError('p2p needs a cluster key: pass --cluster-key-file FILE (create one with `flotilla cluster-key > FILE`)')
  }
  try {
    return await readFile(file, 'utf8')
  } catch (err) {
    throw new ConfigError(`cannot read cluster key file ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`)
  }
}
