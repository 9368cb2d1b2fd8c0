import { randomBytes } from 'node:crypto'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { startProcess, type ProcessHandle } from '../test/helpers/child-process.js'
import { makeTempDir } from '../test/helpers/temp-dir.js'

export interface NetnsDistributionOptions {
  /** Namespace to run in (`ip netns exec`). */
  netns: string
  /** An address of that namespace to listen on. */
  address: string
  /** Default 5000: the namespace is ours, nothing else listens there. */
  port?: number
  readyTimeoutMs?: number
}

export interface NetnsDistribution {
  /** `http://<address>:<port>` */
  readonly url: string
  readonly process: ProcessHandle
  stop (): Promise<void>
}

/**
 * Distribution as a plain registry inside a network namespace. test/helpers/distribution.ts binds to
 * 127.0.0.1, which inside a namespace is unreachable from the root namespace: hence this variant.
 */
export async function startNetnsDistribution (o: NetnsDistributionOptions): Promise<NetnsDistribution> {
  const port = o.port ?? 5000
  const tmp = await makeTempDir('bench-netns-registry')
  const configPath = join(tmp.path, 'config.yml')
  // JSON is valid YAML.
  await writeFile(configPath, JSON.stringify({
    version: 0.1,
    log: { level: 'warn', accesslog: { disabled: true } },
    storage: { filesystem: { rootdirectory: join(tmp.path, 'data') }, maintenance: { uploadpurging: { enabled: false } } },
    http: { addr: `${o.address}:${port}`, secret: randomBytes(16).toString('hex') },
  }))
  const url = `http://${o.address}:${port}`
  let proc: ProcessHandle
  try {
    proc = await startProcess('ip', ['netns', 'exec', o.netns, 'docker-registry', 'serve', configPath], {
      name: `distribution@${o.netns}`,
      readyTimeoutMs: o.readyTimeoutMs ?? 15_000,
      readyCheck: async () => {
        const res = await fetch(`${url}/v2/`, { signal: AbortSignal.timeout(1000) })
        await res.arrayBuffer()
        return res.status === 200
      },
    })
  } catch (err) {
    await tmp.cleanup()
    throw err
  }
  return {
    url,
    process: proc,
    async stop () {
      await proc.stop('SIGTERM', 5000)
      await tmp.cleanup()
    },
  }
}
