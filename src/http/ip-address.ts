import { isIP } from 'node:net'

/** An IP address as a number: IPv4 in 32 bits, IPv6 in 128 (an IPv4-mapped IPv6 address is its IPv4 one). */
export interface IpNumber {
  readonly family: 4 | 6
  readonly value: bigint
}

/** `10.1.4.7`, `2001:db8::1`, `::ffff:10.1.4.7` (and a zone id is dropped) to a number; undefined when not an address. */
export function parseIp (input: string): IpNumber | undefined {
  const address = input.replace(/%.*$/, '')
  const family = isIP(address)
  if (family === 4) return { family: 4, value: ipv4Value(address) }
  if (family !== 6) return undefined
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address)
  if (mapped?.[1] !== undefined) return { family: 4, value: ipv4Value(mapped[1]) }
  const [head = '', tail] = address.split('::') as [string, string | undefined]
  // An embedded IPv4 tail (`::1.2.3.4`) becomes two hextets.
  const toHextets = (part: string): string[] => {
    if (part === '') return []
    const groups = part.split(':')
    const last = groups.at(-1) ?? ''
    if (last.includes('.')) {
      const v = ipv4Value(last)
      groups.splice(-1, 1, (v >> 16n).toString(16), (v & 0xffffn).toString(16))
    }
    return groups
  }
  const left = toHextets(head)
  const right = tail === undefined ? [] : toHextets(tail)
  const zeros = tail === undefined ? [] : Array.from({ length: 8 - left.length - right.length }, () => '0')
  let value = 0n
  for (const h of [...left, ...zeros, ...right]) value = (value << 16n) | BigInt(parseInt(h, 16))
  return { family: 6, value }
}

function ipv4Value (address: string): bigint {
  return address.split('.').reduce((n, octet) => (n << 8n) | BigInt(Number(octet)), 0n)
}

/** `10.0.0.0/8`, `2001:db8::/32`, or a single address; undefined when not a CIDR. */
export function parseCidr (input: string): { readonly family: 4 | 6, readonly prefix: number, readonly network: bigint } | undefined {
  const [address = '', bits] = input.trim().split('/')
  const ip = parseIp(address)
  if (ip === undefined || input.includes('%')) return undefined
  // An IPv4-mapped IPv6 CIDR is taken as the IPv4 one.
  const width = ip.family === 4 ? 32 : 128
  const shift = ip.family === 4 && isIP(address) === 6 ? 96 : 0
  if (bits !== undefined && !/^\d{1,3}$/.test(bits)) return undefined
  const prefix = (bits === undefined ? (shift === 0 ? width : 128) : Number(bits)) - shift
  if (prefix < 0 || prefix > width) return undefined
  return { family: ip.family, prefix, network: prefix === 0 ? 0n : ip.value >> BigInt(width - prefix) }
}

/**
 * A set of networks with the longest match for an address: which of them holds it, most specific first.
 * Lookups go over the prefix lengths in use (at most 33 or 129 map probes), microseconds with thousands of networks.
 */
export class PrefixMap<V> {
  readonly #byFamily = new Map<4 | 6, { lengths: number[], byLength: Map<number, Map<bigint, V>> }>()

  /** Adds a network; false when the text is not a CIDR. A network added twice keeps its first value. */
  add (cidr: string, value: V): boolean {
    const c = parseCidr(cidr)
    if (c === undefined) return false
    let f = this.#byFamily.get(c.family)
    if (f === undefined) this.#byFamily.set(c.family, f = { lengths: [], byLength: new Map() })
    let m = f.byLength.get(c.prefix)
    if (m === undefined) {
      f.byLength.set(c.prefix, m = new Map())
      f.lengths = [...f.byLength.keys()].sort((a, b) => b - a)
    }
    if (!m.has(c.network)) m.set(c.network, value)
    return true
  }

  /** The value of the longest network holding `address`, or undefined. */
  match (address: string): V | undefined {
    const ip = parseIp(address)
    if (ip === undefined) return undefined
    const f = this.#byFamily.get(ip.family)
    if (f === undefined) return undefined
    const width = ip.family === 4 ? 32 : 128
    for (const len of f.lengths) {
      const hit = f.byLength.get(len)?.get(len === 0 ? 0n : ip.value >> BigInt(width - len))
      if (hit !== undefined) return hit
    }
    return undefined
  }
}
