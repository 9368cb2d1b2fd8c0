import assert from 'node:assert/strict'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { startProcess, type ProcessHandle } from './child-process.js'
import type { NetnsCluster, NetnsHost } from './netns-cluster.js'

export interface NetnsRegistryOptions {
  readonly cluster: NetnsCluster
  readonly host: NetnsHost
  /** Holds its configuration and storage. */
  readonly dir: string
  /** `ip:port` (or `0.0.0.0:port`) it listens on inside the namespace. */
  readonly addr: string
  readonly name?: string
  /** Where its output goes; with `accessLog`, one line per request (see registry-access-log.ts). */
  readonly logFile?: string
  readonly accessLog?: boolean
  readonly deleteEnabled?: boolean
}

/** Debian's Distribution inside a test's network namespace, ready once `GET /v2/` answers there. */
export async function startNetnsRegistry (o: NetnsRegistryOptions): Promise<ProcessHandle> {
  const file = join(o.dir, `${o.name ?? 'registry'}.json`)
  await writeFile(file, JSON.stringify({
    version: 0.1, log: { level: 'warn', ...(o.accessLog === true ? { accesslog: { disabled: false } } : {}) }, http: { addr: o.addr, secret: 'test' },
    storage: { filesystem: { rootdirectory: join(o.dir, `store-${o.name ?? 'registry'}`) }, ...(o.deleteEnabled === true ? { delete: { enabled: true } } : {}) },
  }))
  const probe = `http://${o.addr.replace(/^0\.0\.0\.0:/, '127.0.0.1:')}/v2/`
  const [cmd, args] = o.cluster.wrap(o.host, 'docker-registry', ['serve', file])
  return await startProcess(cmd, args, {
    name: o.name ?? 'distribution', readyTimeoutMs: 20_000, readyIntervalMs: 100,
    ...(o.logFile === undefined ? {} : { logFile: o.logFile }),
    readyCheck: async () => (await o.host.exec('curl', ['-sf', '-o', '/dev/null', probe], 5000)).code === 0,
  })
}

/** Pushes every platform of an OCI layout's tag to `ref` with skopeo, from inside `host`, digests kept. */
export async function pushFromNetns (host: NetnsHost, layoutDir: string, tag: string, ref: string): Promise<void> {
  const push = await host.exec('skopeo', ['--insecure-policy', 'copy', '--quiet', '--all', '--preserve-digests', '--dest-tls-verify=false',
    `oci:${layoutDir}:${tag}`, `docker://${ref}`], 120_000)
  assert.equal(push.code, 0, `push to ${ref}: ${push.stderr}`)
}
