import type { Command } from 'commander'

export function registerClusterKey (program: Command): void {
  program.command('cluster-key')
    .description('print a new pre-shared cluster key (give every agent of a cluster the same file)')
    .action(async () => {
      const { generateClusterKey } = await import('../p2p/cluster-key.js')
      process.stdout.write(generateClusterKey())
    })
}
