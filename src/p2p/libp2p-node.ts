import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { identify, type Identify } from '@libp2p/identify'
import type { Libp2p, PrivateKey } from '@libp2p/interface'
import { kadDHT, removePublicAddressesMapper, type KadDHT } from '@libp2p/kad-dht'
import { ping, type Ping } from '@libp2p/ping'
import { preSharedKey } from '@libp2p/pnet'
import { tcp } from '@libp2p/tcp'
import { createLibp2p } from 'libp2p'
import type { Libp2pRouterConfig, Libp2pRouterOptions } from './libp2p-router-options.js'
import { ProviderIndexedDatastore } from './provider-indexed-datastore.js'

export type Libp2pServices = { identify: Identify, ping: Ping, dht: KadDHT }

/**
 * A libp2p node, not started, on a private (PSK) network: TCP, noise, yamux, identify, ping, and a DHT in
 * server mode that keeps private addresses and expires records after recordTtlMs.
 */
export async function createLibp2pNode (options: Libp2pRouterOptions, config: Libp2pRouterConfig, privateKey: PrivateKey): Promise<Libp2p<Libp2pServices>> {
  const prefix = config.protocolPrefix
  return await createLibp2p<Libp2pServices>({
    start: false,
    // provider lookups read one CID's records instead of scanning them all
    datastore: new ProviderIndexedDatastore(),
    privateKey,
    nodeInfo: { name: 'flotilla' },
    addresses: { listen: [options.listen] },
    transports: [tcp()],
    connectionProtector: preSharedKey({ psk: config.psk }),
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    connectionManager: {
      // a whole cluster may dial one bootstrap node at once, many from one host in tests
      inboundConnectionThreshold: 1000,
      maxIncomingPendingConnections: 256,
      maxConnections: 1024,
      dialTimeout: config.dialTimeoutMs,
    },
    services: {
      identify: identify(),
      ping: ping(),
      dht: kadDHT({
        protocol: `${prefix}/kad/1.0.0`,
        clientMode: false,
        ...(options.kBucketSize === undefined ? {} : { kBucketSize: options.kBucketSize }),
        // cluster addresses are private: keep them, drop public ones
        peerInfoMapper: removePublicAddressesMapper,
        reprovide: {
          validity: config.recordTtlMs,
          // also the sweep of expired records held for others
          interval: Math.max(1_000, Math.min(5 * 60_000, Math.floor(config.recordTtlMs / 4))),
          // we re-announce ourselves (readvertiseIntervalMs); kad-dht only steps in if our records lapse
          threshold: 0,
        },
      }),
    },
  })
}
