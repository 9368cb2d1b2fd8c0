import { isIP } from 'node:net'

/** Whether a socket's remote address is this host's loopback (127.0.0.0/8, ::1, or either mapped into IPv6). */
export function isLoopbackAddress (address: string | undefined): boolean {
  if (address === undefined || isIP(address) === 0) return false
  const v4 = address.startsWith('::ffff:') ? address.slice(7) : address
  return v4.startsWith('127.') || address === '::1'
}
