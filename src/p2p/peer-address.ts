import { networkInterfaces } from 'node:os'

/**
 * How peers reach this agent's registry API when not configured: the p2p listen IP (or, for a wildcard,
 * the first non-internal IPv4 address) with the registry port.
 */
export function defaultPeerAddress (p2pListen: string, registryListen: string): string {
  const port = registryListen.slice(registryListen.lastIndexOf(':') + 1)
  const m = /^\/ip([46])\/([^/]+)\//.exec(p2pListen)
  let ip = m?.[2]
  if (ip === undefined || ip === '0.0.0.0' || ip === '::') {
    ip = Object.values(networkInterfaces()).flat().find((i) => i !== undefined && i.family === 'IPv4' && !i.internal)?.address ?? '127.0.0.1'
  }
  return ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}`
}
