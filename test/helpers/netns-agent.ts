// A flotilla agent (from source, under tsx) in a network namespace of a NetnsCluster, with p2p on, pulling
// through one upstream: what the multi-node end-to-end tests start on each node.
import { startProcess, type ProcessHandle } from './child-process.js'
import { CLI_ENTRY, sumMetric } from './flotilla-agent.js'
import type { NetnsCluster, NetnsHost } from './netns-cluster.js'

export interface NetnsAgentOptions {
  readonly cluster: NetnsCluster
  readonly host: NetnsHost
  /** Label for logs and errors. */
  readonly name: string
  readonly dataDir: string
  readonly logFile: string
  readonly keyFile: string
  /** `host:port` of the upstream registry (plain HTTP), also the default registry. */
  readonly upstream: string
  /** Hosts whose agents (p2p on port 5001) it bootstraps from. */
  readonly bootstrap: readonly NetnsHost[]
  /** More `serve` flags (containerd, send-to-holders, …). */
  readonly extra?: readonly string[]
}

export interface NetnsAgent {
  readonly host: NetnsHost
  readonly proc: ProcessHandle
  readonly dataDir: string
  /** Its /metrics text, fetched inside its namespace. */
  metrics (): Promise<string>
  /** Sum of one metric's samples. */
  metric (name: string): Promise<number>
}

/** Starts the agent on the namespace's 0.0.0.0:5000 (p2p on its address, port 5001) and waits for /healthz. */
export async function startNetnsAgent (o: NetnsAgentOptions): Promise<NetnsAgent> {
  const h = o.host
  const [cmd, args] = o.cluster.wrap(h, process.execPath, ['--import', 'tsx', CLI_ENTRY, 'serve',
    '--listen', '0.0.0.0:5000', '--peer-address', `${h.ip}:5000`, '--data-dir', o.dataDir,
    '--p2p-listen', `/ip4/${h.ip}/tcp/5001`, ...o.bootstrap.flatMap((b) => ['--bootstrap', `/ip4/${b.ip}/tcp/5001`]),
    '--cluster-key-file', o.keyFile, '--registry', `${o.upstream}=http://${o.upstream}`, '--default-registry', o.upstream,
    '--log-level', process.env.FLOTILLA_TEST_LOG_LEVEL ?? 'info', ...(o.extra ?? [])])
  const proc = await startProcess(cmd, args, {
    name: o.name, logFile: o.logFile, readyTimeoutMs: 40_000, env: { ...process.env, FLOTILLA_CONFIG: '' },
    readyCheck: async () => (await h.exec('curl', ['-sf', '-o', '/dev/null', 'http://127.0.0.1:5000/healthz'], 5000)).code === 0,
  })
  const metrics = async (): Promise<string> => {
    const r = await h.exec('curl', ['-sf', 'http://127.0.0.1:5000/metrics'], 10_000)
    if (r.code !== 0) throw new Error(`${o.name}: GET /metrics failed (${r.code}): ${r.stderr}`)
    return r.stdout
  }
  return { host: h, proc, dataDir: o.dataDir, metrics, metric: async (name) => sumMetric(await metrics(), name) }
}
