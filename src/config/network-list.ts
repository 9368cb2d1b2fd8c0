import { PrefixMap } from '../http/ip-address.js'
import { ConfigError } from './config-error.js'

/** The networks an option lists (`auth.allowCidrs`, `redirect.trustedProxies`), or a ConfigError naming the bad one. */
export function networkList (option: string, cidrs: readonly string[]): PrefixMap<true> {
  const networks = new PrefixMap<true>()
  for (const cidr of cidrs) {
    if (!networks.add(cidr, true)) throw new ConfigError(`${option}: ${JSON.stringify(cidr)} is not an IPv4 or IPv6 CIDR`)
  }
  return networks
}
