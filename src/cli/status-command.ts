import { Option, type Command } from 'commander'
import { DEFAULT_AGENT } from './precache-command.js'

/**
 * `flotilla status`: asks a running agent for `GET /status.json` (bounded, checked with zod) and prints it as
 * a compact table, or the JSON. The HTTP client and the schema load inside the action so `--help` stays fast.
 */

interface StatusOptions {
  agent: string
  json?: boolean
}

export function registerStatus (program: Command): void {
  program.command('status')
    .description("print a running agent's status: the node, its peers, store, downloads, pre-cache, upstreams, recent errors, traffic")
    .addOption(new Option('--agent <url>', "the agent's registry API, reached from this machine (on loopback, or its metricsListen)")
      .env('FLOTILLA_AGENT').default(DEFAULT_AGENT))
    .option('--json', 'print the JSON the agent answered instead of the table')
    .action(async (opts: StatusOptions) => {
      const [{ agentUrl, getAgentJson }, { nodeStatusSchema }] = await Promise.all([
        import('./precache-command.js'), import('../status/node-status-schema.js'),
      ])
      const base = agentUrl(opts.agent)
      const { raw, data } = await getAgentJson(base, '/status.json', nodeStatusSchema, 'node status')
      if (opts.json === true) {
        // What the agent said, keys it has and this CLI does not know included.
        process.stdout.write(`${JSON.stringify(raw, null, 2)}\n`)
        return
      }
      const { formatNodeStatus } = await import('../status/status-table.js')
      process.stdout.write(formatNodeStatus(data, new Date()))
    })
}
