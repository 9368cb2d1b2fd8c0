import { networkList } from '../config/network-list.js'
import type { PrefixMap } from '../http/ip-address.js'

/**
 * Who the client is: the socket's address, or, when that is a trusted proxy, the right-most hop of
 * `X-Forwarded-For` that is not itself a trusted proxy (hops to its left could be made up by the client).
 */
export class ClientAddress {
  readonly #trusted: PrefixMap<true>

  constructor (trustedProxies: readonly string[]) {
    this.#trusted = networkList('redirect.trustedProxies', trustedProxies)
  }

  of (socketAddress: string | undefined, forwardedFor: string | string[] | undefined): string | undefined {
    if (socketAddress === undefined || this.#trusted.match(socketAddress) !== true) return socketAddress
    const hops = (Array.isArray(forwardedFor) ? forwardedFor.join(',') : forwardedFor ?? '').split(',').map((h) => h.trim()).filter((h) => h !== '')
    let client = socketAddress
    for (let i = hops.length - 1; i >= 0; i--) {
      const hop = stripPort(hops[i] ?? '')
      client = hop
      if (this.#trusted.match(hop) !== true) break
    }
    return client
  }
}

/** `1.2.3.4:5678`, `[2001:db8::1]:80` → the address. */
function stripPort (hop: string): string {
  const bracketed = /^\[([^\]]+)\](?::\d+)?$/.exec(hop)
  if (bracketed?.[1] !== undefined) return bracketed[1]
  const v4 = /^(\d+\.\d+\.\d+\.\d+):\d+$/.exec(hop)
  return v4?.[1] ?? hop
}
