import { writeFile } from 'node:fs/promises'
import { connect } from 'node:net'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { startProcess, type ProcessHandle } from './child-process.js'
import { freePort } from './free-port.js'
import { makeTempDir } from './temp-dir.js'

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..')
export const CLI_ENTRY = join(ROOT, 'src', 'cli', 'main.ts')

export interface FlotillaAgentOptions {
  /** `--registry NAME=URL` pairs. */
  registries?: Record<string, string>
  /** YAML config text written to a file and passed with --config. */
  configYaml?: string
  dataDir?: string
  port?: number
  host?: string
  args?: readonly string[]
  env?: NodeJS.ProcessEnv
  logLevel?: string
  /** Run inside a network namespace (`ip netns exec NAME`). */
  netns?: string
  readyTimeoutMs?: number
  /** The agent serves HTTPS (with --tls-cert/--tls-key in args): readiness is checked over TLS without verification. */
  tls?: boolean
}

export interface FlotillaAgent {
  /** `http://host:port` */
  readonly url: string
  readonly host: string
  readonly port: number
  readonly dataDir: string
  readonly process: ProcessHandle
  /** Prometheus text. */
  metricsText (): Promise<string>
  /** Sum of a metric's samples whose labels include all of `labels`. */
  metric (name: string, labels?: Record<string, string>): Promise<number>
  stop (): Promise<void>
  kill9 (): Promise<void>
}

async function isListening (host: string, port: number): Promise<boolean> {
  return await new Promise((resolve) => {
    const socket = connect({ host, port })
    socket.setTimeout(1000, () => { socket.destroy(); resolve(false) })
    socket.once('connect', () => { socket.destroy(); resolve(true) })
    socket.once('error', () => resolve(false))
  })
}

export const DIST_ENTRY = join(ROOT, 'dist', 'cli', 'main.js')

/**
 * The command line that runs the flotilla CLI: from source (tsx), or from the build in dist/ when
 * FLOTILLA_AGENT_DIST=1 (benchmarks measure what production runs, without the transpiler's memory).
 * FLOTILLA_AGENT_NODE=/path/to/wrapper profiles agents (`exec node --cpu-prof --cpu-prof-dir=DIR "$@"`).
 */
export function flotillaCommand (args: readonly string[]): [string, string[]] {
  // FLOTILLA_AGENT_NODE: another node binary or wrapper (e.g. one that adds --cpu-prof, which NODE_OPTIONS refuses).
  const node = process.env.FLOTILLA_AGENT_NODE ?? process.execPath
  if (process.env.FLOTILLA_AGENT_DIST === '1') return [node, [DIST_ENTRY, ...args]]
  return [node, ['--import', 'tsx', CLI_ENTRY, ...args]]
}

export function sumMetric (text: string, name: string, labels: Record<string, string> = {}): number {
  let total = 0
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue
    const m = /^([a-zA-Z_:][\w:]*)(\{[^}]*\})?\s+(\S+)$/.exec(line)
    if (m === null || m[1] !== name) continue
    const labelText = m[2] ?? ''
    if (Object.entries(labels).every(([k, v]) => labelText.includes(`${k}="${v}"`))) total += Number(m[3])
  }
  return total
}

/** Starts `flotilla serve` as its own process and waits until /readyz answers. */
export async function startFlotilla (options: FlotillaAgentOptions = {}): Promise<FlotillaAgent> {
  const tmp = await makeTempDir('agent')
  const dataDir = options.dataDir ?? join(tmp.path, 'data')
  const host = options.host ?? '127.0.0.1'
  const port = options.port ?? await freePort()
  const args = ['serve', '--listen', `${host}:${port}`, '--data-dir', dataDir, '--log-level', options.logLevel ?? 'info']
  for (const [name, url] of Object.entries(options.registries ?? {})) args.push('--registry', `${name}=${url}`)
  if (options.configYaml !== undefined) {
    const file = join(tmp.path, 'config.yaml')
    await writeFile(file, options.configYaml)
    args.push('--config', file)
  }
  args.push(...(options.args ?? []))
  let [cmd, argv] = flotillaCommand(args)
  if (options.netns !== undefined) {
    argv = ['netns', 'exec', options.netns, cmd, ...argv]
    cmd = 'ip'
  }
  const url = `${options.tls === true ? 'https' : 'http'}://${host}:${port}`
  const proc = await startProcess(cmd, argv, {
    name: `flotilla:${port}`,
    env: { ...process.env, FLOTILLA_CONFIG: '', ...options.env },
    readyTimeoutMs: options.readyTimeoutMs ?? 30_000,
    readyCheck: options.tls === true
      ? async () => await isListening(host, port)
      : async () => {
        try {
          const res = await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(1000) })
          await res.arrayBuffer()
          return res.status === 200
        } catch {
          return false
        }
      },
  })
  const metricsText = async (): Promise<string> => {
    const res = await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(5000) })
    return await res.text()
  }
  return {
    url, host: `${host}:${port}`, port, dataDir, process: proc,
    metricsText,
    metric: async (name, labels) => sumMetric(await metricsText(), name, labels),
    stop: async () => {
      await proc.stop('SIGTERM', 15_000)
      await tmp.cleanup()
    },
    kill9: async () => { await proc.kill9() },
  }
}
