import type { Connection, Libp2p, PeerId, Stream } from '@libp2p/interface'
import { lpStream } from '@libp2p/utils'
import { P2pError } from './errors.js'
import { isHostPort, type PeerInfo } from './router.js'

/**
 * `/<prefix>/info/1.0.0`: the dialer reads one length-prefixed JSON message `{ httpAddress, zone? }`
 * and both sides close. This is how peers learn where each other's registry API is; libp2p's identify
 * has no field for it.
 */
export function infoProtocol (prefix: string): string {
  return `${prefix}/info/1.0.0`
}

const MAX_MESSAGE_BYTES = 4096
const MAX_ZONE_LENGTH = 253

export function encodePeerInfo (info: Omit<PeerInfo, 'id'>): Uint8Array {
  return new TextEncoder().encode(JSON.stringify({ httpAddress: info.httpAddress, ...(info.zone === undefined ? {} : { zone: info.zone }) }))
}

export function decodePeerInfo (id: string, bytes: Uint8Array): PeerInfo {
  let value: unknown
  try {
    value = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes))
  } catch (err) {
    throw new P2pError('ERR_PEER_INFO_INVALID', `peer ${id} sent info that is not JSON`, { cause: err })
  }
  if (typeof value !== 'object' || value === null) throw new P2pError('ERR_PEER_INFO_INVALID', `peer ${id} sent info that is not an object`)
  const { httpAddress, zone } = value as { httpAddress?: unknown, zone?: unknown }
  if (typeof httpAddress !== 'string' || !isHostPort(httpAddress)) {
    throw new P2pError('ERR_PEER_INFO_INVALID', `peer ${id} sent an invalid httpAddress`)
  }
  if (zone !== undefined && (typeof zone !== 'string' || zone.length > MAX_ZONE_LENGTH)) {
    throw new P2pError('ERR_PEER_INFO_INVALID', `peer ${id} sent an invalid zone`)
  }
  return Object.freeze(zone === undefined ? { id, httpAddress } : { id, httpAddress, zone })
}

/** The server side: answers every stream with our info. */
export function createInfoHandler (message: Uint8Array, timeoutMs: number): (stream: Stream, connection: Connection) => Promise<void> {
  return async (stream) => {
    const signal = AbortSignal.timeout(timeoutMs)
    try {
      await lpStream(stream, { maxDataLength: MAX_MESSAGE_BYTES }).write(message, { signal })
      await stream.close({ signal })
    } catch (err) {
      stream.abort(err instanceof Error ? err : new Error(String(err)))
    }
  }
}

/** The client side: opens a stream to `peer` (dialing it when needed) and reads its info. */
export async function requestPeerInfo (libp2p: Libp2p, protocol: string, peer: PeerId, signal: AbortSignal): Promise<PeerInfo> {
  const stream = await libp2p.dialProtocol(peer, protocol, { signal })
  try {
    const message = await lpStream(stream, { maxDataLength: MAX_MESSAGE_BYTES }).read({ signal })
    const info = decodePeerInfo(peer.toString(), message.subarray())
    await stream.close({ signal })
    return info
  } catch (err) {
    stream.abort(err instanceof Error ? err : new Error(String(err)))
    throw err
  }
}
