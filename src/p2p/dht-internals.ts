import type { PeerId } from '@libp2p/interface'
import type { KadDHT } from '@libp2p/kad-dht'
import type { CID } from 'multiformats/cid'

/**
 * kad-dht's routing table size and provider store: public fields of its KadDHT class, not of the KadDHT
 * interface, which has no way to count the table's peers nor to read or add provider records without a
 * network query. Kept here, in one place, each read guarded so a kad-dht without them degrades to a walk.
 */
interface DhtInternals {
  readonly routingTable?: { readonly size?: number }
  readonly providers?: {
    getProviders?: (cid: CID, options: { signal: AbortSignal }) => Promise<PeerId[]>
    addProvider?: (cid: CID, provider: PeerId) => Promise<void>
  }
}

function internals (dht: KadDHT): DhtInternals {
  return dht as KadDHT & DhtInternals
}

/** Peers in the routing table, or undefined if this kad-dht does not say. */
export function routingTableSize (dht: KadDHT): number | undefined {
  return internals(dht).routingTable?.size
}

/** Provider records held here for `cid` (ours and those others announced to us), or undefined if unreadable. */
export async function localProviders (dht: KadDHT, cid: CID, signal: AbortSignal): Promise<PeerId[] | undefined> {
  const providers = internals(dht).providers
  if (typeof providers?.getProviders !== 'function') return undefined
  return await providers.getProviders(cid, { signal })
}

/** Keeps a provider record of `provider` for `cid`, as if its announcement had reached us; false if unsupported. */
export async function addLocalProvider (dht: KadDHT, cid: CID, provider: PeerId): Promise<boolean> {
  const providers = internals(dht).providers
  if (typeof providers?.addProvider !== 'function') return false
  await providers.addProvider(cid, provider)
  return true
}
