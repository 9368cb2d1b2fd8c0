import { ConfigError } from '../config/config-error.js'
import { PrefixMap } from '../http/ip-address.js'

export interface Region {
  readonly name: string
  readonly cidrs: readonly string[]
  /** Serves the same `/v2/<name>/blobs/<digest>` paths as the origin. */
  readonly blobBase: string
}

/**
 * The redirector's regions, compiled for the longest-prefix match of a client's address (IPv4 and IPv6):
 * `10.1.4.7` goes to the region holding `10.1.4.0/24` rather than the one holding `10.1.0.0/16`.
 */
export class RegionTable {
  readonly regions: readonly Region[]
  readonly #prefixes = new PrefixMap<Region>()

  constructor (regions: readonly Region[]) {
    const names = new Set<string>()
    const owners = new Map<string, string>()
    this.regions = regions.map((r) => ({ ...r, blobBase: r.blobBase.replace(/\/+$/, '') }))
    for (const r of this.regions) {
      if (names.has(r.name)) throw new ConfigError(`redirect.regions: region ${r.name} is declared twice`)
      names.add(r.name)
      for (const cidr of r.cidrs) {
        const key = cidr.trim()
        const other = owners.get(key)
        if (other !== undefined) throw new ConfigError(`redirect.regions: ${cidr} is in both ${other} and ${r.name}`)
        owners.set(key, r.name)
        if (!this.#prefixes.add(cidr, r)) throw new ConfigError(`redirect.regions: ${r.name}: ${JSON.stringify(cidr)} is not an IPv4 or IPv6 CIDR`)
      }
    }
  }

  /** The region of the longest network holding `address`, or undefined (the origin serves it). */
  match (address: string): Region | undefined {
    return this.#prefixes.match(address)
  }
}
