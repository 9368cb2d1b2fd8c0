// flotilla started from the built JavaScript (dist/), as it runs in production: the CPU and RSS figures of
// the benchmarks are then those of `node dist/cli/main.js`, not of tsx compiling on the fly.
import { access } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { startProcess, type ProcessHandle } from '../test/helpers/child-process.js'
import { sumMetric } from '../test/helpers/flotilla-agent.js'
import { runCommand } from '../test/helpers/run-command.js'

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..')
export const DIST_ENTRY = join(ROOT, 'dist', 'cli', 'main.js')

export interface DistAgentOptions {
  /** Label for logs and errors. */
  readonly name: string
  /** `host:port` the registry API listens on. */
  readonly listen: string
  readonly dataDir: string
  /** Everything after `serve --listen … --data-dir …`. */
  readonly args: readonly string[]
  /** Run inside this network namespace (`ip netns exec`, which execs node: the pid stays node's). */
  readonly netns?: string
  readonly logFile?: string
  /** Default 'warn'. */
  readonly logLevel?: string
  /** Node options before the script, e.g. ['--cpu-prof', '--cpu-prof-dir=/tmp/prof'] to profile an agent. */
  readonly nodeArgs?: readonly string[]
  /** Default 40 s (eight agents starting at once on two cores are slow). */
  readonly readyTimeoutMs?: number
}

export interface DistAgent {
  readonly name: string
  /** Base URL as seen from where the agent runs (its namespace, or the host). */
  readonly url: string
  readonly dataDir: string
  readonly process: ProcessHandle
  /** Prometheus text, fetched from inside the agent's namespace when it has one. */
  metricsText (): Promise<string>
  metric (name: string, labels?: Record<string, string>): Promise<number>
  stop (): Promise<void>
}

/** Fails early, with the fix, when `npm run build` has not been run. */
export async function assertBuilt (): Promise<void> {
  try {
    await access(DIST_ENTRY)
  } catch {
    throw new Error(`${DIST_ENTRY} is missing: run \`npm run build\` first`)
  }
}

/** GET inside the namespace (curl), or from here (fetch); the body, or undefined on any failure. */
async function httpGet (netns: string | undefined, url: string, timeoutMs: number): Promise<string | undefined> {
  if (netns === undefined) {
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) })
      const text = await res.text()
      return res.ok ? text : undefined
    } catch {
      return undefined
    }
  }
  const r = await runCommand('ip', ['netns', 'exec', netns, 'curl', '-sf', '--max-time', String(timeoutMs / 1000), url], { timeoutMs: timeoutMs + 2000 })
  return r.code === 0 ? r.stdout : undefined
}

/**
 * Starts `node dist/cli/main.js serve …` and waits until /readyz answers 200. FLOTILLA_AGENT_NODE_ARGS adds
 * Node flags to every agent (`--cpu-prof --cpu-prof-dir=DIR` profiles them); FLOTILLA_AGENT_LOG_LEVEL sets the log
 * level of agents started without one (default warn).
 */
export async function startDistAgent (o: DistAgentOptions): Promise<DistAgent> {
  const extra = (process.env.FLOTILLA_AGENT_NODE_ARGS ?? '').split(' ').filter((a) => a !== '')
  const argv = [...extra, ...(o.nodeArgs ?? []), DIST_ENTRY, 'serve', '--listen', o.listen, '--data-dir', o.dataDir, '--log-level', o.logLevel ?? (process.env.FLOTILLA_AGENT_LOG_LEVEL || 'warn'), ...o.args]
  const [cmd, args] = o.netns === undefined
    ? [process.execPath, argv]
    : ['ip', ['netns', 'exec', o.netns, process.execPath, ...argv]]
  const url = `http://${o.listen.replace(/^0\.0\.0\.0:/, '127.0.0.1:')}`
  const proc = await startProcess(cmd, args, {
    name: o.name,
    logFile: o.logFile,
    env: { ...process.env, FLOTILLA_CONFIG: '' },
    readyTimeoutMs: o.readyTimeoutMs ?? 40_000,
    readyIntervalMs: 200,
    readyCheck: async () => (await httpGet(o.netns, `${url}/readyz`, 2000)) !== undefined,
  })
  const metricsText = async (): Promise<string> => {
    const text = await httpGet(o.netns, `${url}/metrics`, 5000)
    if (text === undefined) throw new Error(`${o.name}: GET ${url}/metrics failed`)
    return text
  }
  return {
    name: o.name,
    url,
    dataDir: o.dataDir,
    process: proc,
    metricsText,
    metric: async (name, labels) => sumMetric(await metricsText(), name, labels),
    stop: async () => { await proc.stop('SIGTERM', 10_000) },
  }
}
