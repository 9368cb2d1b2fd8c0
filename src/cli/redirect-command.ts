import type { Command } from 'commander'
import { ConfigError } from '../config/config-error.js'

/**
 * `flotilla redirect explain ADDRESS`: which region the redirector's table sends a client at that address to
 * (longest prefix), read from the same configuration the redirector runs with. Whether the region holds a
 * given blob is decided at request time; this answers the table's part, for firewall and routing questions.
 */
export function registerRedirect (program: Command): void {
  const redirect = program.command('redirect').description('the redirector role\'s region table')
  redirect.command('explain')
    .description('print the region (and blob host) a client address is sent to, or the origin')
    .argument('<address>', 'the client\'s IPv4 or IPv6 address')
    .option('-c, --config <file>', 'the redirector\'s configuration (env FLOTILLA_CONFIG)')
    .action(async (address: string, o: { config?: string }) => {
      const { parseIp } = await import('../http/ip-address.js')
      if (parseIp(address) === undefined) throw new ConfigError(`${JSON.stringify(address)} is not an IPv4 or IPv6 address`)
      const { loadConfig } = await import('../config/load-config.js')
      const { RegionTable } = await import('../redirect/region-table.js')
      const config = await loadConfig(o.config ?? process.env.FLOTILLA_CONFIG, {})
      const origin = config.redirect.origin
      if (origin === undefined) throw new ConfigError('redirect.origin is not set in this configuration')
      const region = new RegionTable(config.redirect.regions).match(address)
      process.stdout.write(region === undefined
        ? `${address}: no region; blobs from the origin ${origin}\n`
        : `${address}: region ${region.name}; blobs from ${region.blobBase} when it has them, else the origin ${origin}\n`)
    })
}
