import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'

/** Listens on `host:port` (`[v6]:port`; an empty host is every IPv4 address); resolves to the bound `host:port`. */
export async function listen (server: Server, hostPort: string): Promise<string> {
  const colon = hostPort.lastIndexOf(':')
  const host = hostPort.slice(0, colon).replace(/^\[|\]$/g, '') || '0.0.0.0'
  const port = Number(hostPort.slice(colon + 1))
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => { server.off('error', reject); resolve() })
  })
  const a = server.address() as AddressInfo
  return a.family === 'IPv6' ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`
}
