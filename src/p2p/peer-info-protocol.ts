import type { Connection, Libp2p, PeerId, Stream } from '@libp2p/interface'
import { lpStream } from '@libp2p/utils'
import { P2pError } from './errors.js'
import { isHostPort, type PeerInfo } from './router.js'

/**
 * `/<prefix>/info/1.0.0`: the dialer reads one length-prefixed JSON message `{ httpAddress, zone?, peers? }`
 * and both sides close. This is how peers learn where each other's registry API is (libp2p's identify
 * has no field for it) and, in `peers`, the multiaddrs (`.../p2p/<id>`) of the flotilla nodes the answering
 * node is connected to, so a small cluster joins up into a full mesh without waiting for DHT walks.
 */
export function infoProtocol (prefix: string): string {
  return `${prefix}/info/1.0.0`
}

const MAX_MESSAGE_BYTES = 256 * 1024
const MAX_ZONE_LENGTH = 253
const MAX_PEERS = 512
const MAX_ADDRESS_LENGTH = 512

export interface InfoMessage {
  readonly info: PeerInfo
  /** Multiaddrs ending in `/p2p/<id>` of the nodes the sender is connected to (unchecked beyond being short strings). */
  readonly peers: readonly string[]
}

export function encodePeerInfo (info: Omit<PeerInfo, 'id'>, peers: readonly string[] = []): Uint8Array {
  return new TextEncoder().encode(JSON.stringify({
    httpAddress: info.httpAddress,
    ...(info.zone === undefined ? {} : { zone: info.zone }),
    ...(peers.length === 0 ? {} : { peers: peers.slice(0, MAX_PEERS) }),
  }))
}

/** Our info with the peer list: `peers` is dropped when it is not a list of short strings (older or odd senders still join). */
export function decodeInfoMessage (id: string, bytes: Uint8Array): InfoMessage {
  let value: unknown
  try {
    value = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes))
  } catch (err) {
    throw new P2pError('ERR_PEER_INFO_INVALID', `peer ${id} sent info that is not JSON`, { cause: err })
  }
  if (typeof value !== 'object' || value === null) throw new P2pError('ERR_PEER_INFO_INVALID', `peer ${id} sent info that is not an object`)
  const { httpAddress, zone, peers } = value as { httpAddress?: unknown, zone?: unknown, peers?: unknown }
  if (typeof httpAddress !== 'string' || !isHostPort(httpAddress)) {
    throw new P2pError('ERR_PEER_INFO_INVALID', `peer ${id} sent an invalid httpAddress`)
  }
  if (zone !== undefined && (typeof zone !== 'string' || zone.length > MAX_ZONE_LENGTH)) {
    throw new P2pError('ERR_PEER_INFO_INVALID', `peer ${id} sent an invalid zone`)
  }
  const isList = Array.isArray(peers) && peers.length <= MAX_PEERS &&
    peers.every((p): p is string => typeof p === 'string' && p.length > 0 && p.length <= MAX_ADDRESS_LENGTH)
  return { info: Object.freeze(zone === undefined ? { id, httpAddress } : { id, httpAddress, zone }), peers: isList ? peers : [] }
}

/** The server side: answers every stream with the message `current()` makes at that moment. */
export function createInfoHandler (current: () => Promise<Uint8Array>, timeoutMs: number): (stream: Stream, connection: Connection) => Promise<void> {
  return async (stream) => {
    const signal = AbortSignal.timeout(timeoutMs)
    try {
      await lpStream(stream, { maxDataLength: MAX_MESSAGE_BYTES }).write(await current(), { signal })
      await stream.close({ signal })
    } catch (err) {
      stream.abort(err instanceof Error ? err : new Error(String(err)))
    }
  }
}

/** The client side: opens a stream to `peer` (dialing it when needed) and reads its info. */
export async function requestPeerInfo (libp2p: Libp2p, protocol: string, peer: PeerId, signal: AbortSignal): Promise<InfoMessage> {
  const stream = await libp2p.dialProtocol(peer, protocol, { signal })
  try {
    const message = await lpStream(stream, { maxDataLength: MAX_MESSAGE_BYTES }).read({ signal })
    const info = decodeInfoMessage(peer.toString(), message.subarray())
    await stream.close({ signal })
    return info
  } catch (err) {
    stream.abort(err instanceof Error ? err : new Error(String(err)))
    throw err
  }
}
