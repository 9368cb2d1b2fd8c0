import type { Command } from 'commander'
import { loadConfig, type ConfigOverrides } from '../config/load-config.js'
import { createLogger } from '../logger.js'
import { collectOption } from './collect-option.js'


export function registerServe (program: Command): void {
  program.command('serve')
    .description('serve the OCI pull API as a pull-through mirror (single node with no configuration)')
    .option('-c, --config <file>', 'YAML configuration file (env FLOTILLA_CONFIG)')
    .option('-l, --listen <host:port>', 'registry API address (default 127.0.0.1:5000)')
    .option('-d, --data-dir <dir>', 'where blobs and the tag index are kept (default ./flotilla-data)')
    .option('-r, --registry <name=url>', 'mirror a registry at an endpoint (repeatable), e.g. docker.io=https://registry-1.docker.io', collectOption)
    .option('--default-registry <name>', 'registry for requests without ?ns= (default docker.io)')
    .option('--credentials-file <file>', 'docker config.json with upstream credentials')
    .option('--tls-cert <file>', 'serve HTTPS with this certificate')
    .option('--tls-key <file>', 'key of --tls-cert')
    .option('--log-level <level>', 'fatal|error|warn|info|debug|trace|silent (default info)')
    .option('--metrics-listen <host:port>', 'also serve /metrics, /healthz, /readyz here (else /metrics answers loopback only)')
    .option('--first-byte-timeout <duration>', 'how long a client waits for a first byte or an error it can fall back on (default 5s)')
    .option('--stall-timeout <duration>', 'how long a stream may stop making progress before it is resumed elsewhere or cut (default 5s)')
    .option('--containerd-socket <path>', "serve what the node's containerd holds (read-only)")
    .option('--containerd-namespace <ns>', 'containerd namespace (default k8s.io)')
    .option('--containerd-content-dir <dir>', "containerd's content directory, read directly when readable")
    .option('--p2p-listen <multiaddr>', 'join the peer-to-peer network on this address, e.g. /ip4/0.0.0.0/tcp/5001')
    .option('--bootstrap <multiaddr|dns:name>', 'a peer to join through (repeatable)', collectOption)
    .option('--cluster-key-file <file>', 'pre-shared cluster key (see `flotilla cluster-key`)')
    .option('--zone <name>', "this node's zone; peers in the same zone are preferred")
    .option('--peer-address <host:port>', "how peers reach this agent's registry API")
    .option('--owner-fanout <n>', 'peers this agent streams a blob it owns to at once; more are sent on to them (default 4)')
    .action(async (opts: Record<string, unknown>) => {
      const overrides: ConfigOverrides = {
        listen: opts.listen as string | undefined,
        dataDir: opts.dataDir as string | undefined,
        registries: opts.registry as string[] | undefined,
        defaultRegistry: opts.defaultRegistry as string | undefined,
        credentialsFile: opts.credentialsFile as string | undefined,
        tlsCert: opts.tlsCert as string | undefined,
        tlsKey: opts.tlsKey as string | undefined,
        logLevel: opts.logLevel as string | undefined,
        metricsListen: opts.metricsListen as string | undefined,
        firstByteTimeout: opts.firstByteTimeout as string | undefined,
        stallTimeout: opts.stallTimeout as string | undefined,
        containerdSocket: opts.containerdSocket as string | undefined,
        containerdNamespace: opts.containerdNamespace as string | undefined,
        containerdContentDir: opts.containerdContentDir as string | undefined,
        p2pListen: opts.p2pListen as string | undefined,
        bootstrap: opts.bootstrap as string[] | undefined,
        clusterKeyFile: opts.clusterKeyFile as string | undefined,
        zone: opts.zone as string | undefined,
        peerAddress: opts.peerAddress as string | undefined,
        ownerFanout: opts.ownerFanout as string | undefined,
      }
      const file = (opts.config as string | undefined) ?? process.env.FLOTILLA_CONFIG
      const config = await loadConfig(file === '' ? undefined : file, overrides)
      const logger = createLogger(config.logLevel)
      const { startDaemon } = await import('../daemon.js')
      const daemon = await startDaemon(config, logger)
      let signals = 0
      const stop = (signal: string): void => {
        signals++
        if (signals > 1) {
          logger.warn({ signal }, 'second signal; exiting now')
          process.exit(1)
        }
        logger.info({ signal }, 'stopping: no new connections, letting responses finish')
        daemon.close().then(() => process.exit(0), (err: unknown) => {
          logger.error({ err }, 'shutdown failed')
          process.exit(1)
        })
      }
      process.on('SIGTERM', () => stop('SIGTERM'))
      process.on('SIGINT', () => stop('SIGINT'))
    })
}
