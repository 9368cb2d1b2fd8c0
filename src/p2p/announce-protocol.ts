import type { Connection, Libp2p, PeerId, Stream } from '@libp2p/interface'
import { keyListStream, readKeys, writeKeys, type HoldingsLimits } from './holdings-protocol.js'

/**
 * `/<prefix>/announce/1.0.0`: the dialer tells the other node which keys it now provides, as the holdings
 * protocol's key list (length-prefixed chunks of newline-separated keys, ended by an empty chunk); the other
 * node keeps them as provider records of the dialer and answers with an empty chunk once it has. In a cluster
 * smaller than a k-bucket a DHT announcement goes to every node anyway; this gets there without the walk
 * that finds them (a FIND_NODE to every peer, each answer merged into the peer store, then an ADD_PROVIDER
 * per peer and key), which is what eight agents starting one pull at once spent their first seconds on.
 */
export function announceProtocol (prefix: string): string {
  return `${prefix}/announce/1.0.0`
}

/** The receiving side: `keep` stores the keys as provider records of the dialer before the answer goes. */
export function createAnnounceHandler (
  keep: (peer: PeerId, keys: readonly string[]) => Promise<void>,
  timeoutMs: number,
  limits: HoldingsLimits,
): (stream: Stream, connection: Connection) => Promise<void> {
  return async (stream, connection) => {
    const signal = AbortSignal.timeout(timeoutMs)
    try {
      const lp = keyListStream(stream)
      await keep(connection.remotePeer, await readKeys(lp, connection.remotePeer, limits, signal))
      await lp.write(new Uint8Array(0), { signal })
      await stream.close({ signal })
    } catch (err) {
      stream.abort(err instanceof Error ? err : new Error(String(err)))
    }
  }
}

/** The announcing side: resolves once `peer` answered that it keeps the keys. */
export async function sendAnnouncement (libp2p: Libp2p, protocol: string, peer: PeerId, keys: readonly string[], signal: AbortSignal): Promise<void> {
  const stream = await libp2p.dialProtocol(peer, protocol, { signal })
  try {
    const lp = keyListStream(stream)
    await writeKeys(lp, keys, signal)
    await lp.read({ signal })
    await stream.close({ signal })
  } catch (err) {
    stream.abort(err instanceof Error ? err : new Error(String(err)))
    throw err
  }
}
