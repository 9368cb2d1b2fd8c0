import { lookup } from 'node:dns/promises'
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'

/** A bootstrap entry: a multiaddr (with or without `/p2p/<id>`), or `dns:NAME[:PORT]`. */
export type BootstrapTarget =
  | { readonly kind: 'multiaddr', readonly addr: Multiaddr, readonly peerId?: string }
  | { readonly kind: 'dns', readonly name: string, readonly port?: number }

const DNS_NAME_RE = /^[A-Za-z0-9]([A-Za-z0-9-]{0,62})(\.[A-Za-z0-9]([A-Za-z0-9-]{0,62}))*\.?$/

/** Parses one bootstrap entry; throws TypeError naming the entry when it is neither form. */
export function parseBootstrapTarget (entry: string): BootstrapTarget {
  const s = entry.trim()
  if (s.startsWith('dns:')) {
    const rest = s.slice(4)
    const m = /^([^:]+)(?::(\d{1,5}))?$/.exec(rest)
    const name = m?.[1]
    const port = m?.[2] === undefined ? undefined : Number(m[2])
    if (name === undefined || !DNS_NAME_RE.test(name) || (port !== undefined && (port < 1 || port > 65535))) {
      throw new TypeError(`invalid bootstrap entry ${JSON.stringify(entry)}: expected dns:NAME or dns:NAME:PORT`)
    }
    return port === undefined ? { kind: 'dns', name } : { kind: 'dns', name, port }
  }
  let addr: Multiaddr
  try {
    addr = multiaddr(s)
  } catch (err) {
    throw new TypeError(`invalid bootstrap entry ${JSON.stringify(entry)}: expected a multiaddr such as /ip4/10.0.0.1/tcp/5001 or dns:NAME`, { cause: err })
  }
  const components = addr.getComponents()
  if (!components.some(c => c.name === 'tcp')) {
    throw new TypeError(`invalid bootstrap entry ${JSON.stringify(entry)}: only TCP multiaddrs are supported`)
  }
  const peerId = components.find(c => c.name === 'p2p')?.value
  return peerId === undefined ? { kind: 'multiaddr', addr } : { kind: 'multiaddr', addr, peerId }
}

/** Host and TCP port of an ip4/ip6/dns multiaddr with a tcp component, if it has both. */
export function hostPortOf (addr: Multiaddr): { host: string, port: number } | undefined {
  const components = addr.getComponents()
  const host = components.find(c => c.name === 'ip4' || c.name === 'ip6' || c.name === 'dns' || c.name === 'dns4' || c.name === 'dns6')?.value
  const port = components.find(c => c.name === 'tcp')?.value
  if (host === undefined || port === undefined) return undefined
  return { host, port: Number(port) }
}

export interface ResolveOptions {
  /** Port for `dns:` entries without one (our own p2p port). */
  readonly defaultPort: number
  /** Addresses to leave out (our own), as `endpointKey(host, port)`. */
  readonly exclude: ReadonlySet<string>
  /** At most this many addresses per `dns:` name, chosen at random each time. */
  readonly maxPerName: number
  readonly onError: (target: BootstrapTarget, err: unknown) => void
}

export interface ResolvedTargets {
  readonly addrs: Multiaddr[]
  /** Addresses found before `exclude`: zero with nothing else left means we are the only node. */
  readonly total: number
}

/**
 * Expands targets to dialable multiaddrs. `dns:` names resolve through the system resolver
 * (getaddrinfo: /etc/hosts and search domains, as a headless Service name needs) to A/AAAA addresses,
 * each at the entry's port or `defaultPort`; a random few per name, so a large cluster does not dial
 * everyone every round (the DHT finds the rest). Names that do not resolve go to `onError` and are skipped.
 */
export async function resolveBootstrapTargets (targets: readonly BootstrapTarget[], options: ResolveOptions): Promise<ResolvedTargets> {
  let total = 0
  const isOwn = (addr: Multiaddr): boolean => {
    const hp = hostPortOf(addr)
    return hp !== undefined && options.exclude.has(endpointKey(hp.host, hp.port))
  }
  const resolved = await Promise.all(targets.map(async (target): Promise<Multiaddr[]> => {
    if (target.kind === 'multiaddr') {
      total++
      return isOwn(target.addr) ? [] : [target.addr]
    }
    let addresses: Array<{ address: string, family: number }>
    try {
      addresses = await lookup(target.name, { all: true, verbatim: true })
    } catch (err) {
      options.onError(target, err)
      return []
    }
    total += addresses.length
    const port = target.port ?? options.defaultPort
    const addrs = addresses
      .map(a => multiaddr(`/${a.family === 6 ? 'ip6' : 'ip4'}/${a.address}/tcp/${port}`))
      .filter(addr => !isOwn(addr))
    return shuffle(addrs).slice(0, options.maxPerName)
  }))
  const unique = new Map<string, Multiaddr>()
  for (const addr of resolved.flat()) unique.set(addr.toString(), addr)
  return { addrs: [...unique.values()], total }
}

export function endpointKey (host: string, port: number): string {
  return `${host.toLowerCase()}|${port}`
}

function shuffle<T> (items: T[]): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1))
    const tmp = items[i] as T
    items[i] = items[j] as T
    items[j] = tmp
  }
  return items
}
